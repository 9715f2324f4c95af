//! Images as the pipeline carries them: CHW `u8` planes of one shape per dataset, with the
//! per-channel statistics their normalisation uses. The shape travels with the images, from the
//! reader to the augmentations, the model's input and its MAC count.
use serde::{Deserialize, Serialize};

/// The size of a dataset's images: `channels` planes of `height` × `width` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Bytes (and, normalised, floats) per image.
    pub fn bytes(self) -> usize {
        self.channels * self.plane()
    }

    /// Pixels per channel.
    pub fn plane(self) -> usize {
        self.height * self.width
    }

    /// `[n, channels, height, width]`, as the model takes a batch.
    pub fn batch_dims(self, n: usize) -> [i64; 4] {
        [n as i64, self.channels as i64, self.height as i64, self.width as i64]
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// Per-channel mean and standard deviation of a dataset's pixels, in [0, 1] units:
/// normalisation maps v to (v/255 − mean)/std.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// A class index: CIFAR's fit in a byte, ImageNet-LT's 1,000 and Places-LT's 365 do not.
pub type Label = u16;

/// Images as CHW `u8` planes, one after another, with their labels.
#[derive(Clone, Debug)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<Label>,
    pub num_classes: usize,
    pub shape: ImageShape,
    pub stats: ChannelStats,
}

impl ImageSet {
    /// No images yet, of `num_classes` classes, `shape` and `stats`.
    pub fn empty(num_classes: usize, shape: ImageShape, stats: ChannelStats) -> ImageSet {
        ImageSet { pixels: Vec::new(), labels: Vec::new(), num_classes, shape, stats }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.bytes();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.bytes());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        ImageSet { pixels, labels, ..self.empty_like() }
    }

    /// No images, of this set's classes, shape and statistics.
    pub fn empty_like(&self) -> ImageSet {
        ImageSet::empty(self.num_classes, self.shape, self.stats)
    }

    /// Number of images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
