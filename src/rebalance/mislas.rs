//! MiSLAS's second stage (Zhong et al., "Improving Calibration for Long-Tailed Recognition",
//! CVPR 2021), as its official code runs it on CIFAR-10: the backbone frozen (its CIFAR-10 configs
//! leave BatchNorm shift learning off), the last layer kept from the first stage and fine-tuned at
//! a fifth of the learning rate, a learnt scale per class on the logits (LWS) at the full rate,
//! class-balanced sampling, and **label-aware smoothing**: class y's target puts 1 − ε_y on y and
//! ε_y spread over all classes, with
//!
//!   ε_y = ε_tail + (ε_head − ε_tail) · sin(π/2 · (n_y − n_min) / (n_max − n_min))   ("concave"),
//!
//! so frequent classes, on which the first stage is over-confident, are smoothed most. ε_tail = 0;
//! ε_head is chosen on validation among `SMOOTH_HEAD` (MiSLAS uses 0.3 / 0.2 / 0.1 at ρ = 100 /
//! 50 / 10), together with the epoch.
use tch::{Kind, Tensor};

/// The ε_head values tried.
pub const SMOOTH_HEAD: [f64; 3] = [0.1, 0.2, 0.3];
/// The last layer's learning rate relative to the scales' (MiSLAS's `lr_factor` at ρ = 50 and 10).
pub const LAYER_LR_FACTOR: f64 = 0.2;
/// Weight decay on the layer and the scales (MiSLAS's CIFAR configs).
pub const WEIGHT_DECAY: f64 = 2e-4;

pub const DESCRIPTION: &str = "fine-tunes every head's last layer (at 0.2× the rate) with a learnt scale per \
                               class, class-balanced sampling and label-aware smoothing, on frozen pooled \
                               features";

/// ε_y of every class from its training count (concave shape, ε_tail = 0).
pub fn class_smoothing(counts: &[usize], smooth_head: f64) -> Vec<f64> {
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let min = counts.iter().copied().min().unwrap_or(0) as f64;
    counts
        .iter()
        .map(|&n| {
            let r = if max > min { (n as f64 - min) / (max - min) } else { 1.0 };
            smooth_head * (std::f64::consts::FRAC_PI_2 * r).sin()
        })
        .collect()
}

/// Mean over the batch of (1 − ε_y)·(−log p_y) + ε_y·mean_k(−log p_k), with `smoothing` the ε of
/// every class `[C]` (MiSLAS's LabelAwareSmoothing loss).
pub fn label_aware_loss(logits: &Tensor, targets: &Tensor, smoothing: &Tensor) -> Tensor {
    let log_p = logits.log_softmax(-1, Kind::Float);
    let nll = -log_p.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
    let uniform = -log_p.mean_dim(-1, false, Kind::Float);
    let eps = smoothing.index_select(0, targets);
    ((-&eps + 1.0) * nll + eps * uniform).mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_is_largest_for_the_head_class_and_zero_for_the_tail() {
        let eps = class_smoothing(&[5000, 2750, 500], 0.3);
        assert!((eps[0] - 0.3).abs() < 1e-12);
        assert!((eps[1] - 0.3 * (std::f64::consts::FRAC_PI_4).sin()).abs() < 1e-12, "midway: sin(π/4)");
        assert_eq!(eps[2], 0.0);
    }

    #[test]
    fn the_loss_by_hand_and_with_no_smoothing_is_cross_entropy() {
        // Two classes, logits (0, ln 3): p = (1/4, 3/4). Target 0 with ε = 0.5:
        // 0.5·(−ln ¼) + 0.5·(−ln ¼ − ln ¾)/2.
        let logits = Tensor::from_slice(&[0.0f32, 3f32.ln()]).view([1, 2]);
        let target = Tensor::from_slice(&[0i64]);
        let got = label_aware_loss(&logits, &target, &Tensor::from_slice(&[0.5f32, 0.0])).double_value(&[]);
        let want = 0.5 * 4f64.ln() + 0.5 * (4f64.ln() + (4.0f64 / 3.0).ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let plain = label_aware_loss(&logits, &target, &Tensor::from_slice(&[0.0f32, 0.0])).double_value(&[]);
        let ce = crate::loss::ce::cross_entropy(&logits, &target, 0.0, None).double_value(&[]);
        assert!((plain - ce).abs() < 1e-6);
    }
}
