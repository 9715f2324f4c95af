//! Readers for the CIFAR-10 and CIFAR-100 *binary* releases.
//!
//! CIFAR-10: `data_batch_{1..5}.bin` and `test_batch.bin`, 10,000 records of 3073 bytes each
//! (1 label byte, then 1024 R, 1024 G, 1024 B bytes, row-major).
//! CIFAR-100: `train.bin` (50,000 records) and `test.bin` (10,000), 3074 bytes each
//! (coarse label, fine label, then the same 3072 pixel bytes). We use the fine labels.
//!
//! Every failure names the file and what is wrong with it: a truncated download must never
//! turn into a silently shorter dataset.
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::image::{ChannelStats, ImageSet, ImageShape};

/// Pixels per image: 3 channels of 32×32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// The shape of every CIFAR image.
pub const SHAPE: ImageShape = ImageShape { channels: 3, height: 32, width: 32 };

/// Per-channel mean and std of CIFAR-10's training images, used for CIFAR-100 too by both
/// reference codebases (Cao et al. 2019; Cui et al. 2022).
pub const STATS: ChannelStats = ChannelStats { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.2010] };

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is {actual} bytes, expected {expected} ({records} records of {record} bytes); the file is truncated or is not a {kind} batch")]
    WrongSize { path: PathBuf, actual: u64, expected: u64, records: usize, record: usize, kind: &'static str },
    #[error("{path}: record {record} has label {label}, but {kind} has only {classes} classes")]
    BadLabel { path: PathBuf, record: usize, label: u8, classes: usize, kind: &'static str },
    #[error("{path}: md5 is {actual}, the official file has {expected}; the file is corrupt or modified")]
    BadChecksum { path: PathBuf, actual: String, expected: String },
    #[error("no {kind} dataset found; looked in: {}. Run `longtail data download` or pass --data DIR (or set LONGTAIL_DATA)", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound { kind: &'static str, searched: Vec<PathBuf> },
    #[error("download from {url} failed: {reason}")]
    Download { url: String, reason: String },
}

/// Which CIFAR release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cifar {
    Cifar10,
    Cifar100,
}

/// One file of a release with what we know about it.
pub struct FileSpec {
    pub name: &'static str,
    pub records: usize,
    /// The official MD5 where one is published for the extracted file.
    pub md5: Option<&'static str>,
}

impl Cifar {
    pub fn num_classes(self) -> usize {
        match self {
            Cifar::Cifar10 => 10,
            Cifar::Cifar100 => 100,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cifar::Cifar10 => "CIFAR-10",
            Cifar::Cifar100 => "CIFAR-100",
        }
    }

    /// Class names in label order (CIFAR-100 fine labels are shown by index).
    pub fn class_names(self) -> Vec<String> {
        match self {
            Cifar::Cifar10 => {
                ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }
            Cifar::Cifar100 => (0..100).map(|i| i.to_string()).collect(),
        }
    }

    /// The release whose display name is `name` ("CIFAR-10" or "CIFAR-100").
    pub fn from_name(name: &str) -> Option<Cifar> {
        [Cifar::Cifar10, Cifar::Cifar100].into_iter().find(|k| k.name() == name)
    }

    /// Folder name inside the official archive.
    pub fn folder(self) -> &'static str {
        match self {
            Cifar::Cifar10 => "cifar-10-batches-bin",
            Cifar::Cifar100 => "cifar-100-binary",
        }
    }

    /// Record layout: bytes before the pixels, and which of them is the label we use.
    pub fn label_layout(self) -> (usize, usize) {
        match self {
            Cifar::Cifar10 => (1, 0),
            Cifar::Cifar100 => (2, 1),
        }
    }

    pub fn record_bytes(self) -> usize {
        self.label_layout().0 + IMAGE_BYTES
    }

    pub fn train_files(self) -> &'static [FileSpec] {
        match self {
            Cifar::Cifar10 => &CIFAR10_TRAIN,
            Cifar::Cifar100 => &CIFAR100_TRAIN,
        }
    }

    /// Images of the official training set (what long-tailed subsets are drawn from).
    pub fn train_images(self) -> usize {
        self.train_files().iter().map(|f| f.records).sum()
    }

    pub fn test_files(self) -> &'static [FileSpec] {
        match self {
            Cifar::Cifar10 => &CIFAR10_TEST,
            Cifar::Cifar100 => &CIFAR100_TEST,
        }
    }

    /// Official archive: URL and MD5.
    pub fn archive(self) -> (&'static str, &'static str) {
        match self {
            Cifar::Cifar10 => {
                ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")
            }
            Cifar::Cifar100 => {
                ("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8")
            }
        }
    }
}

const CIFAR10_TRAIN: [FileSpec; 5] = [
    FileSpec { name: "data_batch_1.bin", records: 10_000, md5: Some("5dd7e06a14cb22eb9f671a540d1b7c25") },
    FileSpec { name: "data_batch_2.bin", records: 10_000, md5: Some("5ea93a67294ea407fff1d09f752e9692") },
    FileSpec { name: "data_batch_3.bin", records: 10_000, md5: Some("942cd6a4bcdd0dd3c604fbe906cb4421") },
    FileSpec { name: "data_batch_4.bin", records: 10_000, md5: Some("ae636b3ba5c66a11e91e8cb52e771fcb") },
    FileSpec { name: "data_batch_5.bin", records: 10_000, md5: Some("53f37980c15c3d472c316c40844f3f0d") },
];
const CIFAR10_TEST: [FileSpec; 1] =
    [FileSpec { name: "test_batch.bin", records: 10_000, md5: Some("803d5f7f4d78ea53de84dbe85f74fb6d") }];
const CIFAR100_TRAIN: [FileSpec; 1] = [FileSpec { name: "train.bin", records: 50_000, md5: None }];
const CIFAR100_TEST: [FileSpec; 1] = [FileSpec { name: "test.bin", records: 10_000, md5: None }];

/// Parse the records of one batch file already in memory. `path` is only used in errors.
pub fn parse_batch(kind: Cifar, path: &Path, bytes: &[u8], records: usize) -> Result<ImageSet, DataError> {
    let record = kind.record_bytes();
    let expected = (records * record) as u64;
    if bytes.len() as u64 != expected {
        return Err(DataError::WrongSize {
            path: path.to_path_buf(),
            actual: bytes.len() as u64,
            expected,
            records,
            record,
            kind: kind.name(),
        });
    }
    let (header, label_at) = kind.label_layout();
    let classes = kind.num_classes();
    let mut set = ImageSet {
        pixels: Vec::with_capacity(records * IMAGE_BYTES),
        labels: Vec::with_capacity(records),
        num_classes: classes,
        shape: SHAPE,
        stats: STATS,
    };
    for (r, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[label_at];
        if label as usize >= classes {
            return Err(DataError::BadLabel { path: path.to_path_buf(), record: r, label, classes, kind: kind.name() });
        }
        set.labels.push(label.into());
        set.pixels.extend_from_slice(&rec[header..]);
    }
    Ok(set)
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    crate::store::read_regular(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

fn load_files(kind: Cifar, dir: &Path, files: &[FileSpec]) -> Result<ImageSet, DataError> {
    let mut all = ImageSet::empty(kind.num_classes(), SHAPE, STATS);
    for spec in files {
        let path = dir.join(spec.name);
        let part = parse_batch(kind, &path, &read_file(&path)?, spec.records)?;
        all.pixels.extend_from_slice(&part.pixels);
        all.labels.extend_from_slice(&part.labels);
    }
    Ok(all)
}

/// The full training set in torchvision order (CIFAR-10: batches 1..5 concatenated).
pub fn load_train(kind: Cifar, dir: &Path) -> Result<ImageSet, DataError> {
    load_files(kind, dir, kind.train_files())
}

/// The balanced test set.
pub fn load_test(kind: Cifar, dir: &Path) -> Result<ImageSet, DataError> {
    load_files(kind, dir, kind.test_files())
}

/// Hex MD5 of a byte slice.
pub fn md5_hex(bytes: &[u8]) -> String {
    let digest = Md5::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `verify` found for one file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: String,
    pub records: usize,
    pub md5: String,
    pub md5_checked: bool,
}

/// Check every file of a release: size, label range and (where published) the official MD5.
pub fn verify(kind: Cifar, dir: &Path) -> Result<Vec<FileReport>, DataError> {
    let mut reports = Vec::new();
    for spec in kind.train_files().iter().chain(kind.test_files()) {
        let path = dir.join(spec.name);
        let bytes = read_file(&path)?;
        parse_batch(kind, &path, &bytes, spec.records)?;
        let md5 = md5_hex(&bytes);
        if let Some(expected) = spec.md5 {
            if md5 != expected {
                return Err(DataError::BadChecksum { path, actual: md5, expected: expected.to_string() });
            }
        }
        reports.push(FileReport {
            file: spec.name.to_string(),
            records: spec.records,
            md5,
            md5_checked: spec.md5.is_some(),
        });
    }
    Ok(reports)
}

/// Where to look for a release: the explicit flag if given, else `LONGTAIL_DATA` if set, else
/// `./data`. The first source present is authoritative: a wrong `--data` is an error, never a
/// silent fall-back to some other copy. The base is tried as the release folder and as its parent.
pub fn candidate_dirs(kind: Cifar, flag: Option<&Path>) -> Vec<PathBuf> {
    let base = match (flag, std::env::var_os("LONGTAIL_DATA")) {
        (Some(f), _) => f.to_path_buf(),
        (None, Some(env)) => PathBuf::from(env),
        (None, None) => PathBuf::from("data"),
    };
    vec![base.clone(), base.join(kind.folder())]
}

/// The first candidate directory that holds the release's first training file.
pub fn find_dir(kind: Cifar, flag: Option<&Path>) -> Result<PathBuf, DataError> {
    let searched = candidate_dirs(kind, flag);
    searched
        .iter()
        .find(|d| d.join(kind.train_files()[0].name).is_file())
        .cloned()
        .ok_or(DataError::NotFound { kind: kind.name(), searched })
}

impl std::fmt::Display for Cifar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, IMAGE_BYTES));
        r
    }

    #[test]
    fn parses_labels_and_planes() {
        let mut bytes = record(3, 7);
        bytes.extend(record(9, 200));
        let set = parse_batch(Cifar::Cifar10, Path::new("x.bin"), &bytes, 2).unwrap();
        assert_eq!(set.labels, vec![3, 9]);
        assert_eq!(set.image(1)[0], 200);
        assert_eq!(set.class_counts()[3], 1);
    }

    #[test]
    fn cifar100_uses_fine_label() {
        let mut bytes = vec![4u8, 88];
        bytes.extend(std::iter::repeat_n(1u8, IMAGE_BYTES));
        let set = parse_batch(Cifar::Cifar100, Path::new("train.bin"), &bytes, 1).unwrap();
        assert_eq!(set.labels, vec![88]);
    }

    #[test]
    fn wrong_size_and_bad_label_name_the_file() {
        let bytes = record(3, 0);
        let err = parse_batch(Cifar::Cifar10, Path::new("d/data_batch_2.bin"), &bytes[..100], 1).unwrap_err();
        assert!(err.to_string().contains("d/data_batch_2.bin"), "{err}");
        assert!(err.to_string().contains("100 bytes"), "{err}");
        let err = parse_batch(Cifar::Cifar10, Path::new("t.bin"), &record(10, 0), 1).unwrap_err();
        assert!(matches!(err, DataError::BadLabel { label: 10, record: 0, .. }), "{err}");
    }
}
