//! AutoAugment, CIFAR-10 policy (Cubuk et al. 2019), with the magnitude convention of the
//! DeepVoltaire port that long-tail codebases use (docs/methods.md §8). Per image: pick one
//! of the 25 sub-policies uniformly, apply op 1 with probability p1, then op 2 with p2. Signed
//! ops flip their sign with probability ½.
use super::ops;
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

/// The unsigned value of magnitude index `m` (DeepVoltaire's `np.linspace` ranges).
pub fn magnitude(op: Op, m: usize) -> f64 {
    let t = m as f64 / 9.0;
    match op {
        ShearX | ShearY => 0.3 * t,
        // A fraction of the image size: the paper's 150 px on 331-px images, applied to 32 px.
        TranslateX | TranslateY => 150.0 / 331.0 * t * 32.0,
        Rotate => 30.0 * t,
        Color | Contrast | Sharpness | Brightness => 0.9 * t,
        // np.round(np.linspace(8, 4, 10)): 8 8 7 7 6 6 5 5 4 4 (round half to even).
        Posterize => [8.0, 8.0, 7.0, 7.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0][m],
        Solarize => 256.0 - 256.0 * t,
        AutoContrast | Equalize | Invert => 0.0,
    }
}

/// Apply one op at magnitude index `m`; `sign` is ±1 for the signed ops.
pub fn apply(img: &mut [u8], op: Op, m: usize, sign: f64) {
    let v = magnitude(op, m);
    match op {
        ShearX => ops::shear_x(img, sign * v),
        ShearY => ops::shear_y(img, sign * v),
        TranslateX => ops::translate_x(img, sign * v),
        TranslateY => ops::translate_y(img, sign * v),
        Rotate => ops::rotate(img, sign * v),
        Color => ops::color(img, 1.0 + sign * v),
        Contrast => ops::contrast(img, 1.0 + sign * v),
        Sharpness => ops::sharpness(img, 1.0 + sign * v),
        Brightness => ops::brightness(img, 1.0 + sign * v),
        Posterize => ops::posterize(img, v as u32),
        Solarize => ops::solarize(img, v),
        AutoContrast => ops::autocontrast(img),
        Equalize => ops::equalize(img),
        Invert => ops::invert(img),
    }
}

/// Draw a sub-policy and apply it to one image.
pub fn cifar10_policy(img: &mut [u8], rng: &mut Rng) {
    let sub = &CIFAR10_POLICY[rng.below(CIFAR10_POLICY.len())];
    for step in sub {
        // Draw the coin and the sign whether or not the op fires, so the stream of draws per
        // image has a fixed shape.
        let fire = rng.coin(step.p);
        let sign = if rng.coin(0.5) { 1.0 } else { -1.0 };
        if fire {
            apply(img, step.op, step.m, sign);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_match_the_linspace_ranges() {
        assert!((magnitude(ShearX, 9) - 0.3).abs() < 1e-12);
        assert!((magnitude(TranslateY, 9) - 14.501_510_574).abs() < 1e-6);
        assert!((magnitude(Rotate, 2) - 20.0 / 3.0).abs() < 1e-12);
        assert!((magnitude(Color, 9) - 0.9).abs() < 1e-12);
        assert_eq!(magnitude(Posterize, 7), 5.0);
        assert!((magnitude(Solarize, 0) - 256.0).abs() < 1e-12);
        assert!((magnitude(Solarize, 9)).abs() < 1e-12);
    }

    #[test]
    fn policy_keeps_shape_and_changes_some_images() {
        let mut rng = Rng::from_keys(&[3]);
        let base: Vec<u8> = (0..3072).map(|i| (i * 7 % 256) as u8).collect();
        let mut changed = 0;
        for _ in 0..200 {
            let mut img = base.clone();
            cifar10_policy(&mut img, &mut rng);
            assert_eq!(img.len(), 3072);
            changed += (img != base) as usize;
        }
        assert!((60..200).contains(&changed), "{changed} of 200 images changed");
    }
}
