//! AutoAugment, CIFAR-10 policy (Cubuk et al. 2019), with the magnitude convention of the
//! DeepVoltaire port that long-tail codebases use (docs/methods.md §8). Per image: pick one
//! of the 25 sub-policies uniformly, apply op 1 with probability p1, then op 2 with p2. Signed
//! ops flip their sign with probability ½.
use super::ops;
use crate::data::image::ImageShape;
use crate::data::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Color,
    Posterize,
    Solarize,
    Contrast,
    Sharpness,
    Brightness,
    AutoContrast,
    Equalize,
    Invert,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ShearX => "ShearX",
            Op::ShearY => "ShearY",
            Op::TranslateX => "TranslateX",
            Op::TranslateY => "TranslateY",
            Op::Rotate => "Rotate",
            Op::Color => "Color",
            Op::Posterize => "Posterize",
            Op::Solarize => "Solarize",
            Op::Contrast => "Contrast",
            Op::Sharpness => "Sharpness",
            Op::Brightness => "Brightness",
            Op::AutoContrast => "AutoContrast",
            Op::Equalize => "Equalize",
            Op::Invert => "Invert",
        }
    }
}

/// One step of a sub-policy: operation, probability, magnitude index 0..9.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub op: Op,
    pub p: f64,
    pub m: usize,
}

const fn s(op: Op, p: f64, m: usize) -> Step {
    Step { op, p, m }
}

use Op::*;

/// The 25 CIFAR-10 sub-policies, in the paper's order (Cubuk et al. 2019 (AutoAugment)).
pub const CIFAR10_POLICY: [[Step; 2]; 25] = [
    [s(Invert, 0.1, 7), s(Contrast, 0.2, 6)],
    [s(Rotate, 0.7, 2), s(TranslateX, 0.3, 9)],
    [s(Sharpness, 0.8, 1), s(Sharpness, 0.9, 3)],
    [s(ShearY, 0.5, 8), s(TranslateY, 0.7, 9)],
    [s(AutoContrast, 0.5, 8), s(Equalize, 0.9, 2)],
    [s(ShearY, 0.2, 7), s(Posterize, 0.3, 7)],
    [s(Color, 0.4, 3), s(Brightness, 0.6, 7)],
    [s(Sharpness, 0.3, 9), s(Brightness, 0.7, 9)],
    [s(Equalize, 0.6, 5), s(Equalize, 0.5, 1)],
    [s(Contrast, 0.6, 7), s(Sharpness, 0.6, 5)],
    [s(Color, 0.7, 7), s(TranslateX, 0.5, 8)],
    [s(Equalize, 0.3, 7), s(AutoContrast, 0.4, 8)],
    [s(TranslateY, 0.4, 3), s(Sharpness, 0.2, 6)],
    [s(Brightness, 0.9, 6), s(Color, 0.2, 8)],
    [s(Solarize, 0.5, 2), s(Invert, 0.0, 3)],
    [s(Equalize, 0.2, 0), s(AutoContrast, 0.6, 0)],
    [s(Equalize, 0.2, 8), s(Equalize, 0.6, 4)],
    [s(Color, 0.9, 9), s(Equalize, 0.6, 6)],
    [s(AutoContrast, 0.8, 4), s(Solarize, 0.2, 8)],
    [s(Brightness, 0.1, 3), s(Color, 0.7, 0)],
    [s(Solarize, 0.4, 5), s(AutoContrast, 0.9, 3)],
    [s(TranslateY, 0.9, 9), s(TranslateY, 0.7, 9)],
    [s(AutoContrast, 0.9, 2), s(Solarize, 0.8, 3)],
    [s(Equalize, 0.8, 8), s(Invert, 0.1, 3)],
    [s(TranslateY, 0.7, 9), s(AutoContrast, 0.9, 1)],
];

/// The unsigned value of magnitude index `m` on an image of `shape` (DeepVoltaire's
/// `np.linspace` ranges).
pub fn magnitude(op: Op, m: usize, shape: ImageShape) -> f64 {
    let t = m as f64 / 9.0;
    match op {
        ShearX | ShearY => 0.3 * t,
        // A fraction of the image's width (X) or height (Y), as the reference port multiplies
        // by `img.size`: the paper's 150 px on 331-px images; 14.5 px at most on CIFAR's 32.
        TranslateX => 150.0 / 331.0 * t * shape.width as f64,
        TranslateY => 150.0 / 331.0 * t * shape.height as f64,
        Rotate => 30.0 * t,
        Color | Contrast | Sharpness | Brightness => 0.9 * t,
        // np.round(np.linspace(8, 4, 10)): 8 8 7 7 6 6 5 5 4 4 (round half to even).
        Posterize => [8.0, 8.0, 7.0, 7.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0][m],
        Solarize => 256.0 - 256.0 * t,
        AutoContrast | Equalize | Invert => 0.0,
    }
}

/// Apply one op at magnitude index `m` to an image of `shape`; `sign` is ±1 for the signed ops.
pub fn apply(img: &mut [u8], shape: ImageShape, op: Op, m: usize, sign: f64) {
    let v = magnitude(op, m, shape);
    match op {
        ShearX => ops::shear_x(img, shape, sign * v),
        ShearY => ops::shear_y(img, shape, sign * v),
        TranslateX => ops::translate_x(img, shape, sign * v),
        TranslateY => ops::translate_y(img, shape, sign * v),
        Rotate => ops::rotate(img, shape, sign * v),
        Color => ops::color(img, shape, 1.0 + sign * v),
        Contrast => ops::contrast(img, shape, 1.0 + sign * v),
        Sharpness => ops::sharpness(img, shape, 1.0 + sign * v),
        Brightness => ops::brightness(img, 1.0 + sign * v),
        Posterize => ops::posterize(img, v as u32),
        Solarize => ops::solarize(img, v),
        AutoContrast => ops::autocontrast(img, shape),
        Equalize => ops::equalize(img, shape),
        Invert => ops::invert(img),
    }
}

/// Draw a sub-policy and apply it to one RGB image of `shape`. The policy was searched on
/// CIFAR-10; on other datasets it is the common transfer (Cubuk et al. 2019 apply the
/// ImageNet policy there), with translations scaled to the image's size.
pub fn cifar10_policy(img: &mut [u8], shape: ImageShape, rng: &mut Rng) {
    let sub = &CIFAR10_POLICY[rng.below(CIFAR10_POLICY.len())];
    for step in sub {
        // Draw the coin and the sign whether or not the op fires, so the stream of draws per
        // image has a fixed shape.
        let fire = rng.coin(step.p);
        let sign = if rng.coin(0.5) { 1.0 } else { -1.0 };
        if fire {
            apply(img, shape, step.op, step.m, sign);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIFAR: ImageShape = crate::data::cifar::SHAPE;

    #[test]
    fn magnitudes_match_the_linspace_ranges() {
        assert!((magnitude(ShearX, 9, CIFAR) - 0.3).abs() < 1e-12);
        assert!((magnitude(TranslateY, 9, CIFAR) - 14.501_510_574).abs() < 1e-6);
        assert!((magnitude(Rotate, 2, CIFAR) - 20.0 / 3.0).abs() < 1e-12);
        assert!((magnitude(Color, 9, CIFAR) - 0.9).abs() < 1e-12);
        assert_eq!(magnitude(Posterize, 7, CIFAR), 5.0);
        assert!((magnitude(Solarize, 0, CIFAR) - 256.0).abs() < 1e-12);
        assert!((magnitude(Solarize, 9, CIFAR)).abs() < 1e-12);
    }

    /// Translations are a fraction (150/331 at m = 9) of the width for X and of the height for Y,
    /// as the reference multiplies by `img.size[0]` and `img.size[1]`; the rest do not depend on
    /// the size.
    #[test]
    fn translations_scale_with_the_side_they_move_along() {
        let wide = ImageShape { channels: 3, height: 20, width: 64 };
        assert!((magnitude(TranslateX, 9, wide) - 150.0 / 331.0 * 64.0).abs() < 1e-12);
        assert!((magnitude(TranslateY, 9, wide) - 150.0 / 331.0 * 20.0).abs() < 1e-12);
        assert!((magnitude(TranslateX, 3, wide) - 150.0 / 331.0 / 3.0 * 64.0).abs() < 1e-12);
        assert_eq!(magnitude(Rotate, 5, wide), magnitude(Rotate, 5, CIFAR));
        assert_eq!(magnitude(ShearY, 4, wide), magnitude(ShearY, 4, CIFAR));
    }

    /// Every op keeps an image of another size whole and in range (no index outside its planes),
    /// including images too small for the 3×3 smoothing filter.
    #[test]
    fn every_op_runs_on_images_of_other_sizes() {
        let ops = [
            ShearX,
            ShearY,
            TranslateX,
            TranslateY,
            Rotate,
            Color,
            Posterize,
            Solarize,
            Contrast,
            Sharpness,
            Brightness,
            AutoContrast,
            Equalize,
            Invert,
        ];
        for shape in
            [(20, 48), (1, 1), (2, 5), (64, 64)].map(|(height, width)| ImageShape { channels: 3, height, width })
        {
            let base: Vec<u8> = (0..shape.bytes()).map(|i| (i * 13 % 256) as u8).collect();
            for op in ops {
                for sign in [1.0, -1.0] {
                    let mut img = base.clone();
                    apply(&mut img, shape, op, 7, sign);
                    assert_eq!(img.len(), shape.bytes(), "{} on {shape}", op.name());
                }
            }
        }
    }

    #[test]
    fn policy_keeps_shape_and_changes_some_images() {
        let mut rng = Rng::from_keys(&[3]);
        for shape in [CIFAR, ImageShape { channels: 3, height: 20, width: 48 }] {
            let base: Vec<u8> = (0..shape.bytes()).map(|i| (i * 7 % 256) as u8).collect();
            let mut changed = 0;
            for _ in 0..200 {
                let mut img = base.clone();
                cifar10_policy(&mut img, shape, &mut rng);
                assert_eq!(img.len(), shape.bytes());
                changed += (img != base) as usize;
            }
            assert!((60..200).contains(&changed), "{changed} of 200 images of {shape} changed");
        }
    }
}
