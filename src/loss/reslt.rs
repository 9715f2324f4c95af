//! The ResLT loss (Cui et al. 2022 (ResLT); docs/methods.md §5): α·L_ice + (1−α)·L_fce.
//!
//! - Branch b is trained on the classes of S_b: S_H = all, S_M = classes ≥ start_M, S_T =
//!   classes ≥ start_T. Its per-sample loss is −log(softmax(z_b)[y] + 1e-7), softmax over all C.
//! - L_ice is ONE mean over all active (sample, branch) pairs, so a batch without tail samples
//!   simply has no tail terms (never a 0/0).
//! - L_fce is the plain mean cross-entropy of the fused logits z_H + z_M + z_T.
//!
//! With label smoothing ε (the report's runs) both terms use the smoothed target
//! (1−ε)·onehot + ε/C [DESIGN: the report does not say where it applied smoothing].
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::ce::cross_entropy;
use crate::check::{self, BadValue};
use crate::model::classifier::HeadOutputs;

/// The ResLT loss's `[loss]` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResltParams {
    /// Weight α of the branch-independent term (the paper's α, the official code's beta).
    pub alpha: f64,
    /// First class index of the medium+tail and of the tail branch. Default: [2, 4] on
    /// CIFAR-10, [35, 70] on CIFAR-100 (the official CIFAR code).
    pub branch_starts: Option<[i64; 2]>,
}

impl Default for ResltParams {
    fn default() -> Self {
        ResltParams { alpha: 0.95, branch_starts: None }
    }
}

impl ResltParams {
    /// α in [0, 1], and the branch starts inside a dataset of `num_classes` classes.
    pub fn validate(&self, num_classes: usize) -> Result<(), BadValue> {
        check::unit_closed("loss.alpha", self.alpha)?;
        if let Some([m, t]) = self.branch_starts {
            check::require(
                0 < m && m < t && t < num_classes as i64,
                "loss.branch_starts",
                format!("[{m}, {t}]"),
                "must be two class indices 0 < medium < tail < the class count",
            )?;
        }
        Ok(())
    }

    pub fn branch_sets(&self, num_classes: usize) -> BranchSets {
        match self.branch_starts {
            Some([m, t]) => BranchSets { start_medium: m, start_tail: t },
            None => default_branch_sets(num_classes),
        }
    }
}

/// Default ResLT branch class sets for a dataset with `num_classes` classes (the official ResLT
/// CIFAR code, Cui et al. 2022; docs/methods.md §5).
pub fn default_branch_sets(num_classes: usize) -> BranchSets {
    if num_classes == 100 {
        BranchSets { start_medium: 35, start_tail: 70 }
    } else {
        BranchSets { start_medium: 2, start_tail: 4 }
    }
}

/// What the ResLT loss needs of a head: its three branch logits.
pub fn fits(head: HeadOutputs) -> Result<(), &'static str> {
    if head.branches {
        Ok(())
    } else {
        Err("the ResLT loss needs ResLT branches (model.head = \"bn3\" or \"grouped\", or exits of kind \"reslt\")")
    }
}

/// Class-index boundaries of the medium+tail and tail branches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BranchSets {
    pub start_medium: i64,
    pub start_tail: i64,
}

/// Per-branch activity masks `[3, B]` (float 0/1): head always, medium and tail by class index.
pub fn branch_masks(targets: &Tensor, sets: BranchSets) -> Tensor {
    let head = targets.ones_like().to_kind(Kind::Float);
    let medium = targets.ge(sets.start_medium).to_kind(Kind::Float);
    let tail = targets.ge(sets.start_tail).to_kind(Kind::Float);
    Tensor::stack(&[head, medium, tail], 0)
}

/// Per-(branch, sample) losses `[3, B]` with the reference's epsilon inside the log.
fn branch_losses(branches: &Tensor, targets: &Tensor, smoothing: f64) -> Tensor {
    let log_p = (branches.softmax(-1, Kind::Float) + 1e-7).log();
    let b = branches.size()[0];
    let idx = targets.unsqueeze(0).unsqueeze(-1).expand([b, -1, 1], false);
    let nll = -log_p.gather(2, &idx, false).squeeze_dim(-1);
    if smoothing > 0.0 {
        nll * (1.0 - smoothing) + (-log_p.mean_dim(-1, false, Kind::Float)) * smoothing
    } else {
        nll
    }
}

/// Branch-independent loss L_ice, optionally restricted to samples with `sample_mask` = 1
/// (used when exits route samples, docs/methods.md §7).
pub fn ice_loss(branches: &Tensor, targets: &Tensor, sets: BranchSets, smoothing: f64) -> Tensor {
    let masks = branch_masks(targets, sets);
    let losses = branch_losses(branches, targets, smoothing);
    // The head branch is active for every sample, so the denominator is ≥ B ≥ 1 for any
    // non-empty batch; the clamp only guards an empty batch.
    (losses * &masks).sum(Kind::Float) / masks.sum(Kind::Float).clamp_min(1.0)
}

/// The full ResLT loss for branch logits `[3, B, C]`.
pub fn reslt_loss(branches: &Tensor, targets: &Tensor, sets: BranchSets, alpha: f64, smoothing: f64) -> Tensor {
    let fused = branches.sum_dim_intlist(0, false, Kind::Float);
    let fce = cross_entropy(&fused, targets, smoothing, None);
    ice_loss(branches, targets, sets, smoothing) * alpha + fce * (1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ln(x: f64) -> f64 {
        x.ln()
    }

    /// 2 samples, 3 classes, start_M = 1, start_T = 2.
    /// Sample 0 (y = 0): head branch only. Sample 1 (y = 2): all three branches.
    /// Branch logits (rows = samples):
    ///   H: [ln 2, 0, 0], [0, 0, 0]      M: [0, 0, 0], [0, 0, ln 3]      T: [0, 0, 0], [0, ln 2, ln 2]
    fn example() -> (Tensor, Tensor) {
        let l2 = 2f32.ln();
        let l3 = 3f32.ln();
        #[rustfmt::skip]
        let z = Tensor::from_slice(&[
            l2, 0.0, 0.0,   0.0, 0.0, 0.0,
            0.0, 0.0, 0.0,  0.0, 0.0, l3,
            0.0, 0.0, 0.0,  0.0, l2, l2,
        ])
        .view([3, 2, 3]);
        (z, Tensor::from_slice(&[0i64, 2]))
    }

    #[test]
    fn hand_computed_two_sample_example() {
        let (z, y) = example();
        let sets = BranchSets { start_medium: 1, start_tail: 2 };
        // Per-branch probabilities of the true class:
        //   s0/H: 2/4 = 0.5.   s1/H: 1/3.   s1/M: 3/5.   s1/T: 2/5.
        let e = 1e-7;
        let ice = (-ln(0.5 + e) - ln(1.0 / 3.0 + e) - ln(0.6 + e) - ln(0.4 + e)) / 4.0;
        let got = ice_loss(&z, &y, sets, 0.0).double_value(&[]);
        assert!((got - ice).abs() < 1e-5, "ice {got} vs {ice}");
        // Fused logits: s0 = [ln 2, 0, 0] → p0 = 0.5; s1 = [0, ln 2, ln 3 + ln 2] = [0, ln2, ln6] → p = 6/9.
        let fce = (-ln(0.5) - ln(6.0 / 9.0)) / 2.0;
        for alpha in [0.0, 0.95, 1.0] {
            let got = reslt_loss(&z, &y, sets, alpha, 0.0).double_value(&[]);
            let want = alpha * ice + (1.0 - alpha) * fce;
            assert!((got - want).abs() < 1e-5, "alpha {alpha}: {got} vs {want}");
        }
    }

    #[test]
    fn batch_without_tail_samples_is_finite_and_ignores_tail_branch() {
        let (z, _) = example();
        let y = Tensor::from_slice(&[0i64, 0]);
        let sets = BranchSets { start_medium: 1, start_tail: 2 };
        let got = ice_loss(&z, &y, sets, 0.0).double_value(&[]);
        // Only the head branch is active: s0 p = 0.5, s1 p = 1/3.
        let want = (-ln(0.5 + 1e-7) - ln(1.0 / 3.0 + 1e-7)) / 2.0;
        assert!(got.is_finite() && (got - want).abs() < 1e-5, "{got} vs {want}");
        // Changing tail-branch logits does not change the loss.
        let z2 = z.copy();
        let _ = z2.get(2).fill_(5.0);
        assert!((ice_loss(&z2, &y, sets, 0.0).double_value(&[]) - got).abs() < 1e-9);
    }

    #[test]
    fn masks_follow_class_ranges() {
        let y = Tensor::from_slice(&[0i64, 2, 3, 4, 9]);
        let m = branch_masks(&y, BranchSets { start_medium: 2, start_tail: 4 });
        let v: Vec<f32> = Vec::try_from(m.flatten(0, -1)).unwrap();
        assert_eq!(v, vec![1., 1., 1., 1., 1., 0., 1., 1., 1., 1., 0., 0., 0., 1., 1.]);
    }
}
