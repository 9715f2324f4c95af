//! Per-image augmentation on `u8` CHW images, in the order of the reference pipelines:
//! random crop with zero padding → horizontal flip (docs/methods.md §1) → AutoAugment (Cubuk et al.
//! 2019) → Cutout (DeVries & Taylor 2017, before normalisation: the hole is black) → scaling to
//! [0, 1] and per-channel normalisation (docs/methods.md §1 and §8). Kept free of libtorch so it
//! runs on plain worker threads and is testable alone.
pub mod autoaugment;
pub mod mixup;
pub mod ops;

use super::image::{ChannelStats, ImageShape};
use super::rng::Rng;
use serde::{Deserialize, Serialize};

/// What happens to a training image before it reaches the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Zero padding of the random crop in pixels (0 disables the crop).
    pub crop_padding: usize,
    /// Random horizontal flip with probability 0.5.
    pub flip: bool,
    /// AutoAugment with the CIFAR-10 policy after crop and flip.
    pub autoaugment: bool,
    /// Side of the Cutout hole in pixels (0: off). One hole, centre uniform over the image,
    /// clipped at the border, applied before normalisation (the hole is black, as in PaCo).
    pub cutout: usize,
    /// Mixup α (Zhang et al. 2018 (Mixup); docs/methods.md §8): mix every batch with
    /// λ ~ Beta(α, α); 0 turns Mixup off.
    pub mixup: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig { crop_padding: 4, flip: true, autoaugment: false, cutout: 0, mixup: 0.0 }
    }
}

impl AugmentConfig {
    /// The section's numbers in range, before any image is read.
    pub fn validate(&self) -> Result<(), crate::check::BadValue> {
        use crate::check;
        check::require(self.crop_padding <= 16, "data.augment.crop_padding", self.crop_padding, "must be ≤ 16")?;
        check::require(
            self.cutout <= 1024,
            "data.augment.cutout",
            self.cutout,
            "must be ≤ 1024 pixels (0 turns Cutout off)",
        )?;
        check::require(
            self.mixup.is_finite() && self.mixup >= 0.0,
            "data.augment.mixup",
            self.mixup,
            "must be a finite number ≥ 0 (0 turns Mixup off)",
        )
    }

    /// Whether every augmentation asked for applies to images of `shape`. Every one works at any
    /// height and width (AutoAugment scales its translations to the image); all take RGB.
    pub fn check(&self, shape: ImageShape) -> Result<(), String> {
        if shape.channels != 3 {
            return Err(format!("images of {shape}: the augmentations and normalisation take 3-channel (RGB) images"));
        }
        Ok(())
    }
}

/// Zero a `size`×`size` square centred at (cy, cx), clipped at the border (all channels).
pub fn cutout(img: &mut [u8], shape: ImageShape, size: usize, cy: usize, cx: usize) {
    let (w, plane) = (shape.width, shape.plane());
    let half = size / 2;
    let (y0, y1) = (cy.saturating_sub(half), (cy + size - half).min(shape.height));
    let (x0, x1) = (cx.saturating_sub(half), (cx + size - half).min(w));
    for c in 0..shape.channels {
        for y in y0..y1 {
            img[c * plane + y * w + x0..c * plane + y * w + x1].fill(0);
        }
    }
}

/// Crop an image-sized window at offset (dy, dx) out of the image zero-padded by `pad` on every
/// side, optionally mirrored left–right, into `dst`.
pub fn crop_flip(src: &[u8], dst: &mut [u8], shape: ImageShape, pad: usize, dy: usize, dx: usize, flip: bool) {
    debug_assert_eq!(src.len(), shape.bytes());
    let (h, w, plane) = (shape.height, shape.width, shape.plane());
    for c in 0..shape.channels {
        let s = &src[c * plane..(c + 1) * plane];
        let d = &mut dst[c * plane..(c + 1) * plane];
        for y in 0..h {
            let sy = y as isize + dy as isize - pad as isize;
            let row = &mut d[y * w..(y + 1) * w];
            if !(0..h as isize).contains(&sy) {
                row.fill(0);
                continue;
            }
            for (x, out) in row.iter_mut().enumerate() {
                let cx = if flip { w - 1 - x } else { x };
                let sx = cx as isize + dx as isize - pad as isize;
                *out = if (0..w as isize).contains(&sx) { s[sy as usize * w + sx as usize] } else { 0 };
            }
        }
    }
}

/// Draw the random parameters of one image of `shape` and apply them (the config was checked
/// against the shape by [`AugmentConfig::check`]).
pub fn augment(src: &[u8], dst: &mut [u8], shape: ImageShape, cfg: &AugmentConfig, rng: &mut Rng) {
    let span = 2 * cfg.crop_padding + 1;
    let dy = rng.below(span);
    let dx = rng.below(span);
    let flip = cfg.flip && rng.coin(0.5);
    crop_flip(src, dst, shape, cfg.crop_padding, dy, dx, flip);
    if cfg.autoaugment {
        autoaugment::cifar10_policy(dst, shape, rng);
    }
    if cfg.cutout > 0 {
        let (cy, cx) = (rng.below(shape.height), rng.below(shape.width));
        cutout(dst, shape, cfg.cutout, cy, cx);
    }
}

/// Scale to [0, 1] and normalise each channel: (v/255 − mean)/std.
pub fn normalise(src: &[u8], dst: &mut [f32], shape: ImageShape, stats: &ChannelStats) {
    let plane = shape.plane();
    for c in 0..shape.channels {
        let scale = 1.0 / (255.0 * stats.std[c]);
        let shift = stats.mean[c] / stats.std[c];
        for (o, &v) in dst[c * plane..(c + 1) * plane].iter_mut().zip(&src[c * plane..(c + 1) * plane]) {
            *o = v as f32 * scale - shift;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::{IMAGE_BYTES, SHAPE, STATS};

    const SIDE: usize = 32;
    const PLANE: usize = SIDE * SIDE;

    fn ramp() -> Vec<u8> {
        (0..IMAGE_BYTES).map(|i| (i % 251) as u8 + 1).collect()
    }

    #[test]
    fn centre_crop_without_flip_is_identity() {
        let src = ramp();
        let mut dst = vec![0; IMAGE_BYTES];
        crop_flip(&src, &mut dst, SHAPE, 4, 4, 4, false);
        assert_eq!(src, dst);
    }

    #[test]
    fn offset_crop_shifts_and_zero_fills() {
        let src = ramp();
        let mut dst = vec![9; IMAGE_BYTES];
        // dy = 0, dx = 0: output (y, x) is source (y − 4, x − 4).
        crop_flip(&src, &mut dst, SHAPE, 4, 0, 0, false);
        assert_eq!(dst[0], 0, "padding is zero");
        assert_eq!(dst[3 * SIDE + 10], 0, "rows above the image are zero");
        assert_eq!(dst[4 * SIDE + 4], src[0]);
        assert_eq!(dst[PLANE + 10 * SIDE + 7], src[PLANE + 6 * SIDE + 3]);
        // dy = 8, dx = 8: output (y, x) is source (y + 4, x + 4).
        crop_flip(&src, &mut dst, SHAPE, 4, 8, 8, false);
        assert_eq!(dst[0], src[4 * SIDE + 4]);
        assert_eq!(dst[31 * SIDE + 31], 0);
    }

    #[test]
    fn flip_mirrors_columns() {
        let src = ramp();
        let mut dst = vec![0; IMAGE_BYTES];
        crop_flip(&src, &mut dst, SHAPE, 4, 4, 4, true);
        for y in [0, 13, 31] {
            for x in [0, 5, 31] {
                assert_eq!(dst[2 * PLANE + y * SIDE + x], src[2 * PLANE + y * SIDE + 31 - x]);
            }
        }
    }

    #[test]
    fn random_offsets_cover_0_to_8_and_flip_rate_is_half() {
        let src = ramp();
        let mut dst = vec![0; IMAGE_BYTES];
        let mut rng = Rng::from_keys(&[7]);
        let mut seen = [false; 9];
        let mut flips = 0;
        let n = 4000;
        for _ in 0..n {
            let mut probe = rng.clone();
            let dy = probe.below(9);
            let _dx = probe.below(9);
            let flip = probe.coin(0.5);
            seen[dy] = true;
            flips += flip as usize;
            augment(&src, &mut dst, SHAPE, &AugmentConfig::default(), &mut rng);
        }
        assert!(seen.iter().all(|&s| s), "offsets seen: {seen:?}");
        let rate = flips as f64 / n as f64;
        assert!((rate - 0.5).abs() < 0.03, "flip rate {rate}");
    }

    #[test]
    fn cutout_zeroes_a_clipped_square() {
        let mut img = vec![9u8; IMAGE_BYTES];
        cutout(&mut img, SHAPE, 16, 16, 16);
        let zeros = img.iter().filter(|&&v| v == 0).count();
        assert_eq!(zeros, 3 * 16 * 16);
        assert_eq!(img[8 * SIDE + 8], 0);
        assert_eq!(img[7 * SIDE + 8], 9);
        assert_eq!(img[23 * SIDE + 23], 0);
        assert_eq!(img[24 * SIDE + 23], 9);
        let mut img = vec![9u8; IMAGE_BYTES];
        cutout(&mut img, SHAPE, 16, 0, 31);
        // rows [0, 8), columns [23, 32): 8 × 9 per channel
        assert_eq!(img.iter().filter(|&&v| v == 0).count(), 3 * 8 * 9);
    }

    #[test]
    fn crop_flip_and_cutout_work_on_images_of_any_size() {
        let shape = ImageShape { channels: 3, height: 5, width: 7 };
        let src: Vec<u8> = (0..shape.bytes()).map(|i| i as u8 + 1).collect();
        let mut dst = vec![0; shape.bytes()];
        crop_flip(&src, &mut dst, shape, 1, 1, 1, false);
        assert_eq!(src, dst, "the centred window is the image");
        crop_flip(&src, &mut dst, shape, 1, 1, 1, true);
        assert_eq!(dst[2 * 35 + 4 * 7], src[2 * 35 + 4 * 7 + 6], "mirrored along each row of 7");
        crop_flip(&src, &mut dst, shape, 1, 2, 0, false);
        assert_eq!(dst[4 * 7], 0, "the last row takes the padding below");
        assert_eq!(dst[1], src[7], "row 0, column 1 is row 1, column 0 of the image");
        let mut img = vec![9u8; shape.bytes()];
        cutout(&mut img, shape, 2, 4, 6);
        // Rows 3–4 and columns 5–6: the square clipped at the bottom and right borders.
        assert_eq!(img.iter().filter(|&&v| v == 0).count(), 3 * 2 * 2);
        assert!(AugmentConfig::default().check(shape).is_ok());
        let auto = AugmentConfig { autoaugment: true, ..Default::default() };
        assert!(auto.check(SHAPE).is_ok());
        assert!(auto.check(shape).is_ok(), "AutoAugment runs on any size");
        let grey = ImageShape { channels: 1, ..shape };
        assert!(auto.check(grey).unwrap_err().contains("3-channel"));
    }

    #[test]
    fn normalise_matches_formula_and_range() {
        let mut src = vec![0u8; IMAGE_BYTES];
        src[0] = 255;
        src[PLANE] = 128;
        let mut out = vec![0f32; IMAGE_BYTES];
        normalise(&src, &mut out, SHAPE, &STATS);
        assert!((out[0] - (1.0 - 0.4914) / 0.2023).abs() < 1e-5);
        assert!((out[1] - (-0.4914 / 0.2023)).abs() < 1e-5);
        assert!((out[PLANE] - (128.0 / 255.0 - 0.4822) / 0.1994).abs() < 1e-5);
        let lo = -0.4914f32 / 0.2023;
        let hi = (1.0 - 0.4465f32) / 0.2010;
        assert!(out.iter().all(|&v| v >= lo - 1e-4 && v <= hi + 1e-4));
    }
}
