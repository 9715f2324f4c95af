//! Where each sample's loss goes when the network has early exits (Duggal et al. 2020 (ELF) and
//! the report's hybrids; docs/methods.md §6–7): the one home of the exit decision and of the
//! accumulate / route combination.
//!
//! - Exit index e_i (detached): the first exit k whose prediction is correct AND confident
//!   (max softmax of its prediction logits ≥ τ); the last exit when none qualifies.
//! - `accumulate` (ELF): sample i contributes at every exit k ≤ e_i; `route`: at e_i only.
//! - Batch loss L = Σ_k (|S_k| / B) · ℓ_k(S_k), with ℓ_k the exit's own batch loss on its sample
//!   set S_k (the report's definition, docs/methods.md §7, `ExitNormaliser::Subset`). With sample
//!   weights w (DRW) and `ExitNormaliser::Batch` the factor is Σ_{S_k} w / Σ_B w instead, which
//!   turns a weighted-mean ℓ_k into Σ_{S_k} w·ℓ / Σ_B w: ELF's loss as one weighted mean over the
//!   batch (ours, docs/methods.md §6). An exit with an empty S_k contributes exactly 0 (it is
//!   skipped, never 0/0).
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::kind::LossKind;
use crate::check::{self, BadValue};
use crate::model::classifier::HeadOutputs;

/// The `[loss]` keys of early exits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitLossParams {
    /// The base loss of the exits before the final head. Unset: the final loss where the exits
    /// can take it; plain exits under a ResLT loss take `ce` (they have no branches), and ResLT
    /// exits learn as the ResLT head does (`reslt`, or `ldam` under an LDAM final loss).
    pub exit_loss: Option<LossKind>,
    /// Confidence τ of the training exit decision (Duggal et al. 2020 (ELF); docs/methods.md §6–7).
    pub exit_threshold: f64,
    /// `accumulate` (ELF) or `route`.
    pub exit_mode: LossMode,
    /// In `route` mode: accumulate for the first N epochs, then route (0: route from the start;
    /// docs/methods.md §7, the warm-up is ours). Under routing from the start an exit learns only
    /// from samples it is already correct and confident on, so an untrained exit (softmax ≈ 1/C
    /// < τ) never gets a sample and never learns: results of report models 8 and 14 log 0 % early
    /// exits in every epoch. Accumulating first lets every exit learn from every sample before
    /// routing begins.
    pub route_warmup_epochs: usize,
    /// What "confident" means in the training exit decision (`confidence`, ELF's, or `margin`
    /// (ours), LDAM exits only; docs/methods.md §6).
    pub exit_decision: ExitDecision,
    /// In `accumulate` mode: from this epoch (0-based) on, no training sample leaves early, so
    /// every exit and the final head learn from every sample (our addition). ELF's exit decision
    /// shapes training up to then. Why: in results/elf-margin-r100 the LR drop and DRW at epoch
    /// 160 made exit 2 confident, the share of Few samples reaching the final head fell from 65 %
    /// to 16–25 %, and full depth fell from 76.10 % (@164) to 74.54 %. Unset: never. Inference
    /// is unchanged: it still leaves at the first confident exit.
    pub exits_close_epoch: Option<usize>,
    /// How the exits' losses are normalised when DRW weighs the samples (ours, docs/methods.md
    /// §6). `subset` (the report's hybrid definition, docs/methods.md §7; the default, what every
    /// run before this key trained with) scales each exit's weighted mean by the share of samples
    /// that reach it; `batch` (ELF's sum as one weighted mean) divides every sample's weighted
    /// loss by the whole batch's weight, so the tail-heavy deeper exits keep the weight DRW gave
    /// their samples. Identical without DRW and before it starts.
    pub exit_normaliser: ExitNormaliser,
    /// A factor on the loss of exit 1 and of exit 2 (the final head keeps 1). The default
    /// `[1, 1]` is ELF's plain sum over exits (Duggal et al. 2020; docs/methods.md §6). Why: the
    /// exits' losses also train the shared stages 1–2, which every full-depth prediction goes
    /// through; in every ELF run so far full depth ended 1.3–2.5 points under LDAM-DRW
    /// (results/), with the gap already there at the LR drop. Lighter exit losses pull those
    /// stages less towards the exits' needs. The exit decision does not depend on them.
    pub exit_weights: [f64; 2],
}

impl Default for ExitLossParams {
    fn default() -> Self {
        ExitLossParams {
            exit_loss: None,
            exit_threshold: 0.9,
            exit_mode: LossMode::Accumulate,
            route_warmup_epochs: 0,
            exit_decision: ExitDecision::Confidence,
            exits_close_epoch: None,
            exit_normaliser: ExitNormaliser::Subset,
            exit_weights: [1.0, 1.0],
        }
    }
}

impl ExitLossParams {
    /// The numbers in range, and no exit key set on a network without exits (`has_exits`), where
    /// it would silently do nothing.
    pub fn validate(&self, has_exits: bool) -> Result<(), BadValue> {
        check::confidence("loss.exit_threshold", self.exit_threshold)?;
        let [w1, w2] = self.exit_weights;
        let shown_weights = format!("[{w1}, {w2}]");
        check::require(
            [w1, w2].iter().all(|w| w.is_finite() && *w >= 0.0),
            "loss.exit_weights",
            &shown_weights,
            "must be two finite factors ≥ 0 (exit 1, exit 2)",
        )?;
        check::require(
            self.route_warmup_epochs == 0 || (has_exits && self.exit_mode == LossMode::Route),
            "loss.route_warmup_epochs",
            self.route_warmup_epochs,
            "is the accumulating warm-up of routed exits: it needs [model.exits] and loss.exit_mode = \"route\"",
        )?;
        if let Some(close) = self.exits_close_epoch {
            check::require(
                has_exits && self.exit_mode == LossMode::Accumulate,
                "loss.exits_close_epoch",
                close,
                "closes ELF's training exits: it needs [model.exits] and loss.exit_mode = \"accumulate\"",
            )?;
        }
        check::require(
            has_exits || self.exit_normaliser == ExitNormaliser::Subset,
            "loss.exit_normaliser",
            "\"batch\"",
            "normalises the losses of early exits: it needs [model.exits]",
        )?;
        check::require(
            has_exits || self.exit_weights == [1.0, 1.0],
            "loss.exit_weights",
            &shown_weights,
            "weighs the losses of early exits: it needs [model.exits]",
        )
    }

    /// The loss asked of exits with `exits`' outputs when the final loss is `final_kind`.
    pub fn exit_loss_kind(&self, final_kind: LossKind, exits: HeadOutputs) -> LossKind {
        self.exit_loss.unwrap_or(match (exits.branches, final_kind) {
            (true, LossKind::Ldam) => LossKind::Ldam,
            (true, _) => LossKind::Reslt,
            (false, LossKind::Reslt) => LossKind::Ce,
            (false, kind) => kind,
        })
    }

    /// How the exits' losses combine at `epoch` (0-based): `route` mode accumulates during its
    /// warm-up epochs.
    pub fn exit_mode_at(&self, epoch: usize) -> LossMode {
        match self.exit_mode {
            LossMode::Route if epoch < self.route_warmup_epochs => LossMode::Accumulate,
            mode => mode,
        }
    }

    /// Whether the training exit decision is off at `epoch` (0-based; `exits_close_epoch`).
    pub fn exits_closed_at(&self, epoch: usize) -> bool {
        self.exits_close_epoch.is_some_and(|close| epoch >= close)
    }
}

/// How the training exit decision reads an exit's logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitDecision {
    /// ELF's rule (Duggal et al. 2020; docs/methods.md §6): correct and max softmax(s·z) ≥ τ.
    Confidence,
    /// Correct and softmax(s·(z − m_y·1_y))_y ≥ τ: the confidence the exit's own LDAM loss sees,
    /// i.e. the sample leaves only once that loss is ≤ −ln τ. With s = 30 the plain confidence
    /// passes 0.9 for most training samples at the first exit and starves the final head
    /// (results/elf-r100: 71–81 % leave at exit 1, Few ≈ 5 % at full depth); the margin, largest
    /// for the rarest classes, keeps tail samples flowing to the deeper exits. Training only:
    /// inference has no label, so it always uses the plain confidence.
    Margin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossMode {
    Accumulate,
    Route,
}

/// What each exit's batch loss is scaled by before the exits are summed. The two agree whenever
/// every sample weighs the same (no DRW, or DRW not yet on); they part when DRW weights the tail,
/// which reaches the deeper exits more often than the head classes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitNormaliser {
    /// |S_k| / B: the share of the batch at exit k (the report's hybrids, docs/methods.md §7).
    #[default]
    Subset,
    /// Σ_{S_k} w / Σ_B w: the share of the batch's weight at exit k, so that each sample's weighted
    /// loss is divided by the whole batch's weight, as in PyTorch's weighted mean (ours, for ELF:
    /// docs/methods.md §6).
    Batch,
}

/// Exit index of every sample, `[B]` int64 in 0..K, from each exit's prediction logits
/// (`[B, C]`, last one = final exit). No gradient flows through the decision.
pub fn exit_indices(prediction_logits: &[Tensor], targets: &Tensor, threshold: f64) -> Tensor {
    tch::no_grad(|| {
        let k_last = prediction_logits.len() as i64 - 1;
        let mut exit = targets.full_like(k_last);
        let mut decided = targets.zeros_like().to_kind(Kind::Bool);
        for (k, z) in prediction_logits.iter().enumerate().take(k_last as usize) {
            let (conf, arg) = z.softmax(-1, Kind::Float).max_dim(-1, false);
            let ok = arg.eq_tensor(targets).logical_and(&conf.ge(threshold)).logical_and(&decided.logical_not());
            exit = exit.where_self(&ok.logical_not(), &exit.full_like(k as i64));
            decided = decided.logical_or(&ok);
        }
        exit
    })
}

/// How many samples of each class leave at each of the `num_exits` exits, `[K, C]` float: the
/// training-time exit distribution, logged per epoch (overall and per Many/Medium/Few) because it
/// decides how much of the batch, and of the tail, the deeper layers still learn from.
pub fn exit_counts(exit: &Tensor, labels: &Tensor, num_exits: usize, num_classes: usize) -> Tensor {
    let c = num_classes as i64;
    (exit * c + labels).bincount::<Tensor>(None, num_exits as i64 * c).to_kind(Kind::Float).view([num_exits as i64, c])
}

/// Indices of the samples that contribute at exit `k`.
pub fn samples_at(exit: &Tensor, k: i64, mode: LossMode) -> Tensor {
    let mask = match mode {
        LossMode::Accumulate => exit.ge(k),
        LossMode::Route => exit.eq(k),
    };
    mask.nonzero().squeeze_dim(1)
}

/// Σ_k share_k · loss_k(S_k), with share_k = |S_k| / B, or Σ_{S_k} w / Σ_B w when per-sample
/// `weights` `[B]` are given (see [`ExitNormaliser`]). `loss_k(k, idx)` computes exit k's batch
/// loss on the samples `idx`; it is not called for an empty set.
pub fn combine(
    exit: &Tensor,
    num_exits: usize,
    mode: LossMode,
    weights: Option<&Tensor>,
    mut loss_k: impl FnMut(usize, &Tensor) -> Tensor,
) -> Tensor {
    let batch = exit.size()[0] as f64;
    let batch_weight = weights.map(|w| w.sum(Kind::Float));
    let mut total: Option<Tensor> = None;
    for k in 0..num_exits {
        let idx = samples_at(exit, k as i64, mode);
        let n = idx.size()[0];
        if n == 0 {
            continue;
        }
        let loss = loss_k(k, &idx);
        let term = match (weights, &batch_weight) {
            (Some(w), Some(total_w)) => loss * (w.index_select(0, &idx).sum(Kind::Float) / total_w),
            _ => loss * (n as f64 / batch),
        };
        total = Some(match total {
            Some(t) => t + term,
            None => term,
        });
    }
    total.unwrap_or_else(|| Tensor::zeros([], (Kind::Float, exit.device())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::ce::cross_entropy;

    fn v(t: &Tensor) -> Vec<i64> {
        Vec::try_from(t).unwrap()
    }

    /// Three samples, two classes, three exits. Logits chosen so softmax is easy:
    /// [ln 9, 0] → p = (0.9, 0.1); [0, 0] → (0.5, 0.5); [0, ln 3] → (0.25, 0.75).
    fn batch() -> (Vec<Tensor>, Tensor) {
        let l9 = 9f32.ln();
        let l3 = 3f32.ln();
        let e1 = Tensor::from_slice(&[l9, 0.0, 0.0, 0.0, 0.0, l3]).view([3, 2]);
        let e2 = Tensor::from_slice(&[0.0, 0.0, 0.0, l3, l9, 0.0]).view([3, 2]);
        let e3 = Tensor::from_slice(&[0.0, l3, 0.0, l3, 0.0, l3]).view([3, 2]);
        (vec![e1, e2, e3], Tensor::from_slice(&[0i64, 1, 0]))
    }

    #[test]
    fn exit_index_is_first_correct_and_confident_exit() {
        let (z, y) = batch();
        // τ = 0.7: s0 exits at E1 (0.9, correct). s1: E1 (0.5) no, E2 (0.75, correct) yes → 1.
        // s2: E1 predicts 1 (wrong), E2 predicts 0 with 0.9 → 1.
        assert_eq!(v(&exit_indices(&z, &y, 0.7)), vec![0, 1, 1]);
        // τ = 0.8: s1 never confident enough → last exit (2).
        assert_eq!(v(&exit_indices(&z, &y, 0.8)), vec![0, 2, 1]);
        // τ = 0.95: nobody qualifies.
        assert_eq!(v(&exit_indices(&z, &y, 0.95)), vec![2, 2, 2]);
    }

    /// The `margin` exit decision (Loss `exit_decision`): the exit's logits lose s·m_y on the
    /// true class before the confidence test. s = 10, margins (0.1, 0.5) → (1, 5) logits.
    #[test]
    fn margin_decision_by_hand() {
        use crate::loss::ldam::subtract_margins;
        let (l19, l99) = (19f32.ln(), 99f32.ln());
        // a: y=0, p = 0.95 → after margin e^(ln19−1)/(…+1) = 6.99/7.99 = 0.875 < 0.9: stays.
        // b: y=0, p = 0.99 → 36.4/37.4 = 0.973 ≥ 0.9: leaves at exit 1.
        // c: y=1, p = 0.99 → ln99−5 = −0.41 < 0: no longer the argmax: stays.
        let e1 = Tensor::from_slice(&[l19, 0.0, l99, 0.0, 0.0, l99]).view([3, 2]);
        let last = Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 0, 1]);
        assert_eq!(v(&exit_indices(&[e1.shallow_clone(), last.shallow_clone()], &y, 0.9)), vec![0, 0, 0]);
        let scaled_margins = Tensor::from_slice(&[0.1f32, 0.5]) * 10.0;
        let adjusted = subtract_margins(&e1, &y, &scaled_margins);
        assert_eq!(v(&exit_indices(&[adjusted, last], &y, 0.9)), vec![1, 0, 1]);
    }

    /// −ln p of sample `i`'s true class under logits `z`: one term of a hand-computed loss.
    fn nll(z: &Tensor, y: &Tensor, i: usize) -> f64 {
        -z.softmax(-1, Kind::Float).double_value(&[i as i64, v(y)[i]]).ln()
    }

    fn ce_rows(z: &Tensor, y: &Tensor, idx: &Tensor) -> Tensor {
        cross_entropy(&z.index_select(0, idx), &y.index_select(0, idx), 0.0, None)
    }

    #[test]
    fn accumulated_and_routed_losses_by_hand() {
        let (z, y) = batch();
        let exit = Tensor::from_slice(&[0i64, 2, 1]);
        let l = |k: usize, i: usize| nll(&z[k], &y, i);
        // accumulate: S_1 = {0,1,2}, S_2 = {1,2}, S_3 = {1}
        // L = (3/3)·mean(l10,l11,l12) + (2/3)·mean(l21,l22) + (1/3)·l31 = Σ over pairs / 3
        let want_acc = (l(0, 0) + l(0, 1) + l(0, 2) + l(1, 1) + l(1, 2) + l(2, 1)) / 3.0;
        let got = combine(&exit, 3, LossMode::Accumulate, None, |k, idx| ce_rows(&z[k], &y, idx)).double_value(&[]);
        assert!((got - want_acc).abs() < 1e-5, "{got} vs {want_acc}");
        // route: S_1 = {0}, S_2 = {2}, S_3 = {1}: L = (l10 + l22 + l31) / 3
        let want_route = (l(0, 0) + l(1, 2) + l(2, 1)) / 3.0;
        let got = combine(&exit, 3, LossMode::Route, None, |k, idx| ce_rows(&z[k], &y, idx)).double_value(&[]);
        assert!((got - want_route).abs() < 1e-5, "{got} vs {want_route}");
    }

    /// The `batch` normaliser (docs/methods.md §6) with DRW weights: Σ_k Σ_{i∈S_k} w_i·ℓ_{k,i} / Σ_i w_i,
    /// against the `subset` form.
    #[test]
    fn batch_weight_normaliser_by_hand() {
        let (z, y) = batch();
        let exit = Tensor::from_slice(&[0i64, 2, 1]);
        let l = |k: usize, i: usize| nll(&z[k], &y, i);
        // Class weights (1, 4): samples 0 and 2 are class 0 (w = 1), sample 1 is class 1 (w = 4).
        let class_w = Tensor::from_slice(&[1.0f32, 4.0]);
        let w = class_w.index_select(0, &y);
        let weighted = |k: usize, idx: &Tensor| {
            cross_entropy(&z[k].index_select(0, idx), &y.index_select(0, idx), 0.0, Some(&class_w))
        };
        // accumulate: S_1 = {0,1,2}, S_2 = {1,2}, S_3 = {1}; Σ_B w = 6.
        let want = (l(0, 0) + 4.0 * l(0, 1) + l(0, 2) + 4.0 * l(1, 1) + l(1, 2) + 4.0 * l(2, 1)) / 6.0;
        let got = combine(&exit, 3, LossMode::Accumulate, Some(&w), weighted).double_value(&[]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // `subset` (docs/methods.md §7) scales each exit's weighted mean by |S_k| / B instead:
        // here S_3 = {1} (w 4 of 6) counts 1/3 rather than 4/6, so the two differ.
        let subset = (l(0, 0) + 4.0 * l(0, 1) + l(0, 2)) / 6.0
            + (2.0 / 3.0) * (4.0 * l(1, 1) + l(1, 2)) / 5.0
            + (1.0 / 3.0) * l(2, 1);
        let got = combine(&exit, 3, LossMode::Accumulate, None, weighted).double_value(&[]);
        assert!((got - subset).abs() < 1e-5, "{got} vs {subset}");
        assert!((want - subset).abs() > 1e-3);
        // Equal weights: the two normalisers agree.
        let ones = w.ones_like();
        let unweighted = |k: usize, idx: &Tensor| ce_rows(&z[k], &y, idx);
        let a = combine(&exit, 3, LossMode::Accumulate, Some(&ones), unweighted).double_value(&[]);
        let b = combine(&exit, 3, LossMode::Accumulate, None, unweighted).double_value(&[]);
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    #[test]
    fn exit_counts_by_hand() {
        let rows = |t: Tensor| Vec::<Vec<f32>>::try_from(t).unwrap();
        // Exits 0, 2, 1, 0 for labels 1, 0, 1, 1 (2 classes): exit 0 took two of class 1, exit 1
        // one of class 1, the final exit one of class 0.
        let exit = Tensor::from_slice(&[0i64, 2, 1, 0]);
        let y = Tensor::from_slice(&[1i64, 0, 1, 1]);
        assert_eq!(rows(exit_counts(&exit, &y, 3, 2)), vec![vec![0.0, 2.0], vec![0.0, 1.0], vec![1.0, 0.0]]);
        // An exit nobody takes, and a class nobody has, still have their slots.
        let exit = Tensor::from_slice(&[0i64, 0]);
        let y = Tensor::from_slice(&[0i64, 0]);
        assert_eq!(rows(exit_counts(&exit, &y, 3, 3)), vec![vec![2.0, 0.0, 0.0], vec![0.0; 3], vec![0.0; 3]]);
    }

    #[test]
    fn every_sample_at_exit_one_leaves_later_exits_empty() {
        let (z, y) = batch();
        let exit = Tensor::from_slice(&[0i64, 0, 0]);
        let mut called = Vec::new();
        let got = combine(&exit, 3, LossMode::Route, None, |k, idx| {
            called.push(k);
            ce_rows(&z[k], &y, idx)
        });
        assert_eq!(called, vec![0], "empty exits are never evaluated");
        let want = ce_rows(&z[0], &y, &Tensor::from_slice(&[0i64, 1, 2])).double_value(&[]);
        assert!((got.double_value(&[]) - want).abs() < 1e-6 && got.double_value(&[]).is_finite());
        let got = combine(&exit, 3, LossMode::Accumulate, None, |k, idx| ce_rows(&z[k], &y, idx));
        assert!((got.double_value(&[]) - want).abs() < 1e-6, "accumulate = route when all exit at 1");
    }
}
