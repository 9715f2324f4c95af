//! Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021):
//! subtract τ · log π_y from every class's prediction logit, π the training prior. It turns a
//! classifier of p(y | x) under the long-tailed prior into one of the balanced posterior; τ = 1
//! is the Bayes-consistent choice for a perfectly calibrated model, and τ is chosen on validation.
use tch::Tensor;

use super::heads::Head;
use super::StageTwoContext;

/// τ from 0 (as trained) to 2.5 in steps of 0.1.
pub fn settings() -> Vec<f64> {
    (0..=25).map(|i| i as f64 / 10.0).collect()
}

pub const DESCRIPTION: &str = "subtracts τ·log(training prior) from every head's prediction logits (the fused \
                               logits of a ResLT head, s·cos of a cosine one), exits included";

/// The offset −τ·log π, with a prior floor so that a class without training images stays finite.
pub fn offset(prior: &Tensor, tau: f64) -> Tensor {
    prior.clamp_min(1e-12).log() * -tau
}

pub fn heads(ctx: &StageTwoContext, tau: f64) -> Vec<Head> {
    ctx.base
        .iter()
        .map(|layer| Head { layer: layer.duplicate(), scale: None, offset: Some(offset(&ctx.prior, tau)) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_offset_is_minus_tau_log_prior() {
        let prior = Tensor::from_slice(&[0.5f32, 0.25, 0.25]);
        let got = Vec::<f32>::try_from(offset(&prior, 2.0)).unwrap();
        let want = [2.0 * 2f32.ln(), 2.0 * 4f32.ln(), 2.0 * 4f32.ln()];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
        // τ = 0 changes nothing; an empty class stays finite.
        let zero = offset(&prior, 0.0).abs().max().double_value(&[]);
        assert_eq!(zero, 0.0);
        let empty = offset(&Tensor::from_slice(&[1.0f32, 0.0]).to_device(Device::Cpu), 1.0);
        assert!(empty.isfinite().all().int64_value(&[]) == 1);
    }
}
