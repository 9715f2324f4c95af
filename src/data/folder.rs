//! Image-folder datasets in the layout of ImageNet-LT and Places-LT (Liu et al., CVPR 2019, "Large-
//! Scale Long-Tailed Recognition in an Open World"): a root folder of image files and a list file
//! per split, one image a line, `relative/path.png label`. The list is the long-tailed subset
//! itself, so no further subset is drawn from it.
//!
//! Every image of a dataset has one size (the pipeline carries one [`ImageShape`]; resize them
//! beforehand), is decoded to RGB and stored as CHW planes like the CIFAR readers' images.
//! Normalisation uses ImageNet's channel statistics, as the ImageNet-LT and Places-LT codebases
//! do. Every failure names the list, its line, or the image.
use std::path::{Path, PathBuf};

use super::image::{ChannelStats, ImageSet, ImageShape, Label};

/// ImageNet's per-channel mean and std (torchvision's), which ImageNet-LT and Places-LT use.
pub const IMAGENET_STATS: ChannelStats = ChannelStats { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/// The most classes a [`Label`] can tell apart.
pub const MAX_CLASSES: usize = Label::MAX as usize + 1;

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{list} line {line}: expected `relative/path label`, got {text:?}")]
    BadLine { list: PathBuf, line: usize, text: String },
    #[error("{list} line {line}: label {label} is outside 0–{} (the dataset has {classes} classes)", classes - 1)]
    BadLabel { list: PathBuf, line: usize, label: String, classes: usize },
    #[error("{classes} classes: a folder dataset holds at most {MAX_CLASSES}")]
    TooManyClasses { classes: usize },
    #[error("{path}: cannot decode the image: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path} is {found}, but {first} (the list's first image) is {expected}: every image of a dataset has one size; resize them beforehand")]
    OtherSize { path: PathBuf, found: ImageShape, first: PathBuf, expected: ImageShape },
    #[error("{list} lists no image")]
    Empty { list: PathBuf },
}

/// One split of a folder dataset: the images `list` names under `root`, labelled 0..`classes`.
pub fn load(root: &Path, list: &Path, classes: usize) -> Result<ImageSet, FolderError> {
    if classes > MAX_CLASSES {
        return Err(FolderError::TooManyClasses { classes });
    }
    let text = crate::store::read_regular_string(list)
        .map_err(|source| FolderError::Io { path: list.to_path_buf(), source })?;
    let mut set: Option<ImageSet> = None;
    let mut first = PathBuf::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (rel, label) = parse_line(list, i + 1, line, classes)?;
        let path = root.join(rel);
        let (shape, planes) = decode(&path)?;
        let set = set.get_or_insert_with(|| {
            first = path.clone();
            ImageSet::empty(classes, shape, IMAGENET_STATS)
        });
        if shape != set.shape {
            return Err(FolderError::OtherSize { path, found: shape, first: first.clone(), expected: set.shape });
        }
        set.pixels.extend_from_slice(&planes);
        set.labels.push(label);
    }
    set.ok_or_else(|| FolderError::Empty { list: list.to_path_buf() })
}

/// `relative/path label`: the path may hold spaces, the label is the last word.
fn parse_line<'a>(list: &Path, line: usize, text: &'a str, classes: usize) -> Result<(&'a str, Label), FolderError> {
    let bad = || FolderError::BadLine { list: list.to_path_buf(), line, text: text.to_string() };
    let (rel, label) = text.rsplit_once(char::is_whitespace).ok_or_else(bad)?;
    let rel = rel.trim_end();
    if rel.is_empty() {
        return Err(bad());
    }
    let value: usize = label.parse().map_err(|_| bad())?;
    if value >= classes {
        return Err(FolderError::BadLabel { list: list.to_path_buf(), line, label: label.to_string(), classes });
    }
    Ok((rel, value as Label))
}

/// The image at `path` as RGB CHW planes.
fn decode(path: &Path) -> Result<(ImageShape, Vec<u8>), FolderError> {
    let bytes =
        crate::store::read_regular(path).map_err(|source| FolderError::Io { path: path.to_path_buf(), source })?;
    let rgb = ::image::load_from_memory(&bytes)
        .map_err(|e| FolderError::Decode { path: path.to_path_buf(), reason: e.to_string() })?
        .to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let shape = ImageShape { channels: 3, height: h, width: w };
    let mut planes = vec![0u8; shape.bytes()];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            planes[c * h * w + i] = px[c];
        }
    }
    Ok((shape, planes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_a_path_then_a_label() {
        let list = Path::new("train.txt");
        assert_eq!(parse_line(list, 1, "a/b.png 3", 10).unwrap(), ("a/b.png", 3));
        assert_eq!(parse_line(list, 1, "with space/b.png\t9", 10).unwrap(), ("with space/b.png", 9));
        for bad in ["a/b.png", "3", "a/b.png x", "a/b.png -1"] {
            let err = parse_line(list, 7, bad, 10).unwrap_err().to_string();
            assert!(err.contains("train.txt line 7"), "{bad}: {err}");
        }
        let err = parse_line(list, 2, "a.png 10", 10).unwrap_err().to_string();
        assert!(err.contains("outside 0–9"), "{err}");
    }
}
