//! What the network is asked to do.
pub mod ce;
pub mod reslt;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::model::ModelOutput;
use reslt::{reslt_loss, BranchSets};

/// `[loss]` section of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `ce` (cross-entropy).
    pub kind: LossKind,
    /// Label smoothing ε (SPEC §6.4, standard form): target = (1−ε)·onehot + ε/C.
    pub label_smoothing: f64,
    /// ResLT: weight α of the branch-independent term (SPEC §4.3; the paper's α, the code's beta).
    pub alpha: f64,
    /// ResLT: first class index of the medium+tail and of the tail branch (SPEC §4.4).
    /// Default: [2, 4] on CIFAR-10, [35, 70] on CIFAR-100.
    pub branch_starts: Option<[i64; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Cross-entropy on the final logits (fused logits for a ResLT head).
    Ce,
    /// The ResLT loss α·L_ice + (1−α)·L_fce; needs a `bn3` or `grouped` head.
    Reslt,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig { kind: LossKind::Ce, label_smoothing: 0.0, alpha: 0.95, branch_starts: None }
    }
}

/// Default ResLT branch class sets for a dataset with `num_classes` classes (SPEC §4.4).
pub fn default_branch_sets(num_classes: usize) -> BranchSets {
    if num_classes == 100 {
        BranchSets { start_medium: 35, start_tail: 70 }
    } else {
        BranchSets { start_medium: 2, start_tail: 4 }
    }
}

impl LossConfig {
    pub fn branch_sets(&self, num_classes: usize) -> BranchSets {
        match self.branch_starts {
            Some([m, t]) => BranchSets { start_medium: m, start_tail: t },
            None => default_branch_sets(num_classes),
        }
    }

    /// The training loss of one batch.
    pub fn batch_loss(&self, out: &ModelOutput, targets: &Tensor, num_classes: usize) -> Tensor {
        match (self.kind, &out.branches) {
            (LossKind::Reslt, Some(branches)) => {
                reslt_loss(branches, targets, self.branch_sets(num_classes), self.alpha, self.label_smoothing)
            }
            (LossKind::Reslt, None) => unreachable!("config validation pairs loss.kind = reslt with a ResLT head"),
            (LossKind::Ce, _) => ce::cross_entropy(&out.logits, targets, self.label_smoothing, None),
        }
    }
}
