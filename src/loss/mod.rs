//! What the network is asked to do.
pub mod ce;
pub mod ldam;
pub mod reslt;
pub mod routing;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::model::{ModelOutput, Network};
use reslt::{reslt_loss, BranchSets};
use routing::{combine, exit_indices, LossMode};

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
    /// Early exits: the base loss of the exits before the final head (default: `kind`, or
    /// `ce` when `kind` is `reslt` and the exits are not ResLT exits).
    pub exit_loss: Option<LossKind>,
    /// Early exits: confidence τ of the training exit decision (SPEC §5.2, §9.4).
    pub exit_threshold: f64,
    /// Early exits: `accumulate` (ELF) or `route`.
    pub exit_mode: LossMode,
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
            exit_loss: None,
            exit_threshold: 0.9,
            exit_mode: LossMode::Accumulate,
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

    /// One loss kind on one head's outputs (`branches` for ResLT heads).
    fn head_loss(
        &self,
        kind: LossKind,
        logits: &Tensor,
        branches: Option<&Tensor>,
        targets: &Tensor,
        epoch: usize,
    ) -> Tensor {
        let weights = self.class_weights(epoch);
        match (kind, branches) {
            (LossKind::Reslt, Some(b)) => {
                reslt_loss(b, targets, self.cfg.branch_sets(self.num_classes), self.cfg.alpha, self.cfg.label_smoothing)
            }
            // A ResLT loss on a head without branches falls back to CE on its logits (config
            // validation prevents this for the final head).
            (LossKind::Reslt, None) | (LossKind::Ce, _) => {
                ce::cross_entropy(logits, targets, self.cfg.label_smoothing, weights)
            }
            (LossKind::Ldam, _) => ldam::ldam_loss(logits, targets, &self.margins, self.cfg.scale, weights),
        }
    }

    /// The base loss of the early exits.
    pub fn exit_loss_kind(&self) -> LossKind {
        self.cfg.exit_loss.unwrap_or(match self.cfg.kind {
            LossKind::Reslt => LossKind::Ce,
            k => k,
        })
    }

    /// The training loss of one batch at `epoch`. With early exits the samples are spread over
    /// the exits by the detached exit decision (SPEC §9.4) and each exit applies its own loss
    /// to its own samples.
    pub fn batch_loss(&self, net: &Network, out: &ModelOutput, targets: &Tensor, epoch: usize) -> Tensor {
        if out.exits.is_empty() {
            return self.head_loss(self.cfg.kind, &out.logits, out.branches.as_ref(), targets, epoch);
        }
        let preds = net.prediction_logits(out, self.cfg.scale);
        let exit = exit_indices(&preds, targets, self.cfg.exit_threshold);
        let k_final = out.exits.len();
        combine(&exit, k_final + 1, self.cfg.exit_mode, |k, idx| {
            let y = targets.index_select(0, idx);
            let (logits, branches, kind) = if k == k_final {
                (&out.logits, out.branches.as_ref(), self.cfg.kind)
            } else {
                let e = &out.exits[k];
                let kind = if e.branches.is_some() { LossKind::Reslt } else { self.exit_loss_kind() };
                (&e.logits, e.branches.as_ref(), kind)
            };
            let sub_branches = branches.map(|b| b.index_select(1, idx));
            self.head_loss(kind, &logits.index_select(0, idx), sub_branches.as_ref(), &y, epoch)
        })
    }
}
