//! What the network is asked to do.
pub mod ce;
pub mod ldam;
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
    /// LDAM: largest margin (given to the rarest class) and logit scale s (SPEC §3.2).
    pub max_m: f64,
    pub scale: f64,
    /// Deferred re-weighting: from this epoch (0-based) on, weight classes by the effective
    /// number of samples with `drw_beta` (SPEC §3.3). Unset: no re-weighting.
    pub drw_epoch: Option<usize>,
    pub drw_beta: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Cross-entropy on the final logits (fused logits for a ResLT head).
    Ce,
    /// The ResLT loss α·L_ice + (1−α)·L_fce; needs a `bn3` or `grouped` head.
    Reslt,
    /// LDAM with per-class margins on cosine logits; needs the `cosine` head.
    Ldam,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: LossKind::Ce,
            label_smoothing: 0.0,
            alpha: 0.95,
            branch_starts: None,
            max_m: 0.5,
            scale: 30.0,
            drw_epoch: None,
            drw_beta: 0.9999,
        }
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
}

/// A loss ready for training: the config plus what depends on the training set (LDAM margins,
/// DRW weights), computed once on the training device.
pub struct Criterion {
    cfg: LossConfig,
    num_classes: usize,
    margins: Tensor,
    drw_weights: Tensor,
}

impl Criterion {
    pub fn new(cfg: &LossConfig, train_counts: &[usize], device: tch::Device) -> Self {
        let f32s = |v: Vec<f64>| Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).to_device(device);
        Criterion {
            cfg: cfg.clone(),
            num_classes: train_counts.len(),
            margins: f32s(ldam::margins(train_counts, cfg.max_m)),
            drw_weights: f32s(ldam::effective_number_weights(train_counts, cfg.drw_beta)),
        }
    }

    /// Class weights in force at `epoch` (None = all ones).
    pub fn class_weights(&self, epoch: usize) -> Option<&Tensor> {
        self.cfg.drw_epoch.filter(|&start| epoch >= start).map(|_| &self.drw_weights)
    }

    /// The training loss of one batch at `epoch`.
    pub fn batch_loss(&self, out: &ModelOutput, targets: &Tensor, epoch: usize) -> Tensor {
        let weights = self.class_weights(epoch);
        match (self.cfg.kind, &out.branches) {
            (LossKind::Reslt, Some(branches)) => reslt_loss(
                branches,
                targets,
                self.cfg.branch_sets(self.num_classes),
                self.cfg.alpha,
                self.cfg.label_smoothing,
            ),
            (LossKind::Reslt, None) => unreachable!("config validation pairs loss.kind = reslt with a ResLT head"),
            (LossKind::Ldam, _) => ldam::ldam_loss(&out.logits, targets, &self.margins, self.cfg.scale, weights),
            (LossKind::Ce, _) => ce::cross_entropy(&out.logits, targets, self.cfg.label_smoothing, weights),
        }
    }
}
