//! Heads as a second stage leaves them, and how they are scored: every head's last affine map
//! (re-weighed or re-trained), optionally with a per-class scale and offset on its prediction
//! logits, applied to frozen pooled features.
use tch::Tensor;

use super::features::FeatureSet;
use crate::model::classifier::LastLayer;
use crate::model::CostModel;
use crate::run::StageTwoScore;
use crate::score::calibration::{calibration, ECE_BINS};
use crate::score::early_exit::{early_exit_at, ExitScores};
use crate::score::metrics::{evaluate_predictions, Accuracy, Group};

/// One head after a second stage: prediction logits = scale ⊙ last_layer(z) + offset, where
/// last_layer(z) is on the softmax scale (a cosine classifier's times its scale s).
pub struct Head {
    pub layer: LastLayer,
    /// Per-class factors `[C]` (learnable weight scaling), none for 1.
    pub scale: Option<Tensor>,
    /// Per-class offsets `[C]` (logit adjustment), none for 0.
    pub offset: Option<Tensor>,
}

impl Head {
    pub fn plain(layer: LastLayer) -> Head {
        Head { layer, scale: None, offset: None }
    }

    /// Prediction logits `[B, C]` of pooled features `[B, d]`; `softmax_scale` multiplies cosine
    /// logits (the LDAM scale s), as the network's own prediction logits do.
    pub fn logits(&self, pooled: &Tensor, softmax_scale: f64) -> Tensor {
        let z = self.layer.prediction_logits(pooled, softmax_scale);
        let z = match &self.scale {
            Some(s) => z * s,
            None => z,
        };
        match &self.offset {
            Some(b) => z + b,
            None => z,
        }
    }
}

/// Every head's confidences and predictions over a feature set.
pub fn head_scores(heads: &[Head], set: &FeatureSet, softmax_scale: f64) -> ExitScores {
    let _guard = tch::no_grad_guard();
    let logits: Vec<Tensor> = heads.iter().zip(&set.heads).map(|(h, z)| h.logits(z, softmax_scale)).collect();
    let mut scores = ExitScores::new();
    scores.push(&logits);
    scores
}

/// What the run needs to score heads: its groups, class count, early-exit τ and MAC costs.
pub struct Scoring<'a> {
    pub groups: &'a [Group],
    pub num_classes: usize,
    pub softmax_scale: f64,
    /// Runs with exits: the configured early-exit τ and the network's costs.
    pub early_exit: Option<(f64, &'a CostModel)>,
}

impl Scoring<'_> {
    /// Full-depth accuracy of the final head.
    pub fn full_depth(&self, heads: &[Head], set: &FeatureSet) -> Accuracy {
        let scores = head_scores(heads, set, self.softmax_scale);
        let (_, preds) = scores.final_head();
        evaluate_predictions(preds, &set.labels, self.num_classes, self.groups).accuracy
    }

    /// Full depth, calibration and early exit (at the run's τ, every head as adjusted).
    pub fn score(&self, heads: &[Head], set: &FeatureSet) -> StageTwoScore {
        let scores = head_scores(heads, set, self.softmax_scale);
        let (conf, preds) = scores.final_head();
        let correct: Vec<bool> = preds.iter().zip(&set.labels).map(|(p, y)| p == y).collect();
        StageTwoScore {
            full_depth: evaluate_predictions(preds, &set.labels, self.num_classes, self.groups).accuracy,
            calibration: calibration(conf, &correct, ECE_BINS),
            early_exit: self
                .early_exit
                .map(|(tau, costs)| early_exit_at(&scores, &set.labels, self.groups, self.num_classes, costs, tau)),
        }
    }
}
