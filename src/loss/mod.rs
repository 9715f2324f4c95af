//! What the network is asked to do.
pub mod ce;
pub mod ldam;
pub mod reslt;
pub mod routing;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::model::{ModelOutput, Network};
use reslt::{reslt_loss, BranchSets};
use routing::{combine, exit_counts, exit_indices, ExitNormaliser, LossMode};

/// `[loss]` section of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `ce` (cross-entropy).
    pub kind: LossKind,
    /// Label smoothing ε (Szegedy et al. 2016, standard form; docs/methods.md §3): target =
    /// (1−ε)·onehot + ε/C, on every cross-entropy term: CE, LDAM (after its margins) and both
    /// ResLT terms.
    pub label_smoothing: f64,
    /// ResLT: weight α of the branch-independent term (Cui et al. 2022 (ResLT); docs/methods.md §5;
    /// the paper's α, the code's beta).
    pub alpha: f64,
    /// ResLT: first class index of the medium+tail and of the tail branch (docs/methods.md §5).
    /// Default: [2, 4] on CIFAR-10, [35, 70] on CIFAR-100.
    pub branch_starts: Option<[i64; 2]>,
    /// LDAM: largest margin (given to the rarest class) and logit scale s (Cao et al. 2019;
    /// docs/methods.md §4).
    pub max_m: f64,
    pub scale: f64,
    /// Deferred re-weighting: from this epoch (0-based) on, weight classes by the effective
    /// number of samples with `drw_beta` (Cao et al. 2019, with the effective number of Cui et al.
    /// 2019; docs/methods.md §4). Unset: no re-weighting.
    pub drw_epoch: Option<usize>,
    pub drw_beta: f64,
    /// Early exits: the base loss of the exits before the final head (default: `kind`, or
    /// `ce` when `kind` is `reslt` and the exits are not ResLT exits).
    pub exit_loss: Option<LossKind>,
    /// Early exits: confidence τ of the training exit decision (Duggal et al. 2020 (ELF);
    /// docs/methods.md §6–7).
    pub exit_threshold: f64,
    /// Early exits: `accumulate` (ELF) or `route`.
    pub exit_mode: LossMode,
    /// Early exits in `route` mode: accumulate for the first N epochs, then route (0: route from
    /// the start; docs/methods.md §7, the warm-up is ours). Under routing from the start an exit
    /// learns only from samples it is already correct and confident on, so an untrained exit
    /// (softmax ≈ 1/C < τ) never gets a sample and never learns: results of report models 8 and 14
    /// log 0 % early exits in every epoch. Accumulating first lets every exit learn from every
    /// sample before routing begins.
    pub route_warmup_epochs: usize,
    /// Early exits: what "confident" means in the training exit decision (`confidence`, ELF's,
    /// or `margin` (ours), LDAM exits only; docs/methods.md §6).
    pub exit_decision: ExitDecision,
    /// Early exits in `accumulate` mode: from this epoch (0-based) on, no training sample leaves
    /// early, so every exit and the final head learn from every sample (our addition). ELF's exit
    /// decision shapes training up to then. Why: in results/elf-margin-r100 the LR drop and DRW at
    /// epoch 160 made exit 2 confident, the share of Few samples reaching the final head fell from
    /// 65 % to 16–25 %, and full depth fell from 76.10 % (@164) to 74.54 %. Unset: never.
    /// Inference is unchanged: it still leaves at the first confident exit.
    pub exits_close_epoch: Option<usize>,
    /// Early exits: how the exits' losses are normalised when DRW weighs the samples (ours,
    /// docs/methods.md §6). `subset` (the report's hybrid definition, docs/methods.md §7; the
    /// default, what every run before this key trained with) scales each exit's weighted mean by
    /// the share of samples that reach it; `batch` (ELF's sum as one weighted mean) divides
    /// every sample's weighted loss by the whole batch's weight, so the tail-heavy deeper exits
    /// keep the weight DRW gave their samples. Identical without DRW and before it starts.
    pub exit_normaliser: ExitNormaliser,
    /// Early exits: a factor on the loss of exit 1 and of exit 2 (the final head keeps 1). The
    /// default `[1, 1]` is ELF's plain sum over exits (Duggal et al. 2020; docs/methods.md §6).
    /// Why: the exits' losses also train the shared stages 1–2, which every full-depth prediction
    /// goes through; in every ELF run so far full depth ended 1.3–2.5 points under LDAM-DRW
    /// (results/), with the gap already there at the LR drop. Lighter exit losses pull those
    /// stages less towards the exits' needs. The exit decision is unchanged: it does not depend
    /// on these factors.
    pub exit_weights: [f64; 2],
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
            route_warmup_epochs: 0,
            exit_decision: ExitDecision::Confidence,
            exits_close_epoch: None,
            exit_normaliser: ExitNormaliser::Subset,
            exit_weights: [1.0, 1.0],
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

impl LossConfig {
    /// Every number of the section finite and in range (`drw_beta = 1` would divide by zero in
    /// the effective number; a NaN scale would reach training as "diverged").
    pub fn validate(&self) -> Result<(), crate::check::BadValue> {
        use crate::check;
        check::unit_open("loss.label_smoothing", self.label_smoothing)?;
        check::unit_closed("loss.alpha", self.alpha)?;
        check::non_negative("loss.max_m", self.max_m)?;
        check::positive("loss.scale", self.scale)?;
        check::unit_open("loss.drw_beta", self.drw_beta)?;
        check::confidence("loss.exit_threshold", self.exit_threshold)?;
        let [w1, w2] = self.exit_weights;
        check::require(
            [w1, w2].iter().all(|w| w.is_finite() && *w >= 0.0),
            "loss.exit_weights",
            format!("[{w1}, {w2}]"),
            "must be two finite factors ≥ 0 (exit 1, exit 2)",
        )
    }

    /// The base loss of the early exits: `exit_loss`, else the final loss (`ce` when the final
    /// loss is ResLT, whose branches plain exits do not have).
    pub fn exit_loss_kind(&self) -> LossKind {
        self.exit_loss.unwrap_or(match self.kind {
            LossKind::Reslt => LossKind::Ce,
            k => k,
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

    /// One loss kind on one head's outputs (`branches` for ResLT heads) against plain labels.
    fn head_loss(
        &self,
        kind: LossKind,
        logits: &Tensor,
        branches: Option<&Tensor>,
        targets: &Tensor,
        epoch: usize,
    ) -> Tensor {
        let weights = self.class_weights(epoch);
        let sets = self.cfg.branch_sets(self.num_classes);
        let (alpha, eps) = (self.cfg.alpha, self.cfg.label_smoothing);
        match (kind, branches) {
            (LossKind::Reslt, Some(b)) => reslt_loss(b, targets, sets, alpha, eps),
            // LDAM on a ResLT exit (the report's model 5, "margins on every branch"): every
            // branch's true-class logit is lowered by the class margin before the ResLT loss.
            (LossKind::Ldam, Some(b)) => {
                reslt_loss(&ldam::subtract_margins(b, targets, &self.margins), targets, sets, alpha, eps)
            }
            (LossKind::Ce, _) => ce::cross_entropy(logits, targets, eps, weights),
            // A ResLT loss needs branches; `Config::validate` refuses it on every head without them
            // (the final head and the exits), so a validated config never reaches this arm. Left
            // total rather than a panic: CE on the logits is what a branchless ResLT loss means.
            (LossKind::Reslt, None) => ce::cross_entropy(logits, targets, eps, weights),
            (LossKind::Ldam, None) => ldam::ldam_loss(logits, targets, &self.margins, self.cfg.scale, eps, weights),
        }
    }

    /// The training loss of one batch at `epoch`, with each term named for the divergence guard.
    /// With early exits the samples are spread over the exits by the detached exit decision
    /// (docs/methods.md §6–7; computing it without gradient is ours) and each exit applies its own
    /// loss to its own samples. With Mixup every term is λ·ℓ(y) + (1−λ)·ℓ(y_π) and the exit
    /// decision uses the label with the larger weight.
    pub fn batch_loss(&self, net: &Network, out: &ModelOutput, targets: &Targets, epoch: usize) -> BatchLoss {
        if out.exits.is_empty() {
            let kind = self.cfg.kind;
            let total = targets.loss(|y| self.head_loss(kind, &out.logits, out.branches.as_ref(), y, epoch));
            return BatchLoss {
                terms: vec![(format!("final head ({})", kind.name()), total.shallow_clone())],
                total,
                exit_counts: None,
            };
        }
        let k_final = out.exits.len();
        let decided_by = targets.dominant();
        let exit = if self.cfg.exits_closed_at(epoch) {
            decided_by.full_like(k_final as i64)
        } else {
            self.exit_decision(net, out, &decided_by)
        };
        // Per-sample weights for the `batch` normaliser (ours, docs/methods.md §6): the class
        // weight of the label that decided the exit (with Mixup, the dominant one).
        let sample_weights = match self.cfg.exit_normaliser {
            ExitNormaliser::Batch => self.class_weights(epoch).map(|w| w.index_select(0, &decided_by)),
            ExitNormaliser::Subset => None,
        };
        let mut terms = Vec::new();
        let total = combine(&exit, k_final + 1, self.cfg.exit_mode_at(epoch), sample_weights.as_ref(), |k, idx| {
            let (logits, branches, kind, name) = if k == k_final {
                (&out.logits, out.branches.as_ref(), self.cfg.kind, "final head".to_string())
            } else {
                let e = &out.exits[k];
                let kind = match (e.branches.is_some(), self.cfg.exit_loss_kind()) {
                    (true, LossKind::Ldam) => LossKind::Ldam,
                    (true, _) => LossKind::Reslt,
                    (false, k) => k,
                };
                (&e.logits, e.branches.as_ref(), kind, format!("exit {}", k + 1))
            };
            let sub = targets.select(idx);
            let sub_logits = logits.index_select(0, idx);
            let sub_branches = branches.map(|b| b.index_select(1, idx));
            let term = sub.loss(|y| self.head_loss(kind, &sub_logits, sub_branches.as_ref(), y, epoch));
            terms.push((format!("{name} ({})", kind.name()), term.shallow_clone()));
            // The final head keeps weight 1 (there are two exits, so k < k_final indexes them). A
            // factor of 1 is skipped, not multiplied, so default runs keep the graph they had.
            let weight = if k == k_final { 1.0 } else { self.cfg.exit_weights[k] };
            if weight == 1.0 {
                term
            } else {
                term * weight
            }
        });
        let counts = exit_counts(&exit, &decided_by, k_final + 1, self.num_classes);
        BatchLoss { total, terms, exit_counts: Some(counts) }
    }

    /// The detached exit index of each sample (Duggal et al. 2020 (ELF); docs/methods.md §6): the
    /// first exit that is correct and confident about `labels`, in the sense `exit_decision` gives
    /// "confident".
    fn exit_decision(&self, net: &Network, out: &ModelOutput, labels: &Tensor) -> Tensor {
        let k_final = out.exits.len();
        let mut preds = net.prediction_logits(out, self.cfg.scale);
        if self.cfg.exit_decision == ExitDecision::Margin {
            let scaled_margins = &self.margins * self.cfg.scale;
            tch::no_grad(|| {
                for z in preds.iter_mut().take(k_final) {
                    *z = ldam::subtract_margins(z, labels, &scaled_margins);
                }
            });
        }
        exit_indices(&preds, labels, self.cfg.exit_threshold)
    }
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Ce => "ce",
            LossKind::Reslt => "reslt",
            LossKind::Ldam => "ldam",
        }
    }
}

/// A batch loss and the named terms it sums (one per exit that received samples).
pub struct BatchLoss {
    pub total: Tensor,
    pub terms: Vec<(String, Tensor)>,
    /// With early exits: how many samples of each class left at each exit (`[K, C]`, the
    /// detached decision; under Mixup the class is the dominant label).
    pub exit_counts: Option<Tensor>,
}

impl BatchLoss {
    /// Names of the terms whose value is not finite (for the divergence message).
    pub fn non_finite_terms(&self) -> Vec<String> {
        self.terms
            .iter()
            .map(|(n, t)| (n, t.double_value(&[])))
            .filter(|(_, v)| !v.is_finite())
            .map(|(n, v)| format!("{n} = {v}"))
            .collect()
    }
}

/// The labels a batch is trained against: plain labels, or a Mixup pair with its λ.
pub struct Targets {
    pub labels: Tensor,
    pub mix: Option<(Tensor, f64)>,
}

impl Targets {
    pub fn plain(labels: Tensor) -> Self {
        Targets { labels, mix: None }
    }

    pub fn mixed(labels: Tensor, partner_labels: Tensor, lambda: f64) -> Self {
        Targets { labels, mix: Some((partner_labels, lambda)) }
    }

    /// The same targets for the samples `idx`.
    pub fn select(&self, idx: &Tensor) -> Targets {
        Targets {
            labels: self.labels.index_select(0, idx),
            mix: self.mix.as_ref().map(|(p, l)| (p.index_select(0, idx), *l)),
        }
    }

    /// The label with the larger weight (y when λ ≥ 0.5): what exit decisions use
    /// (docs/methods.md §6 and §8).
    pub fn dominant(&self) -> Tensor {
        match &self.mix {
            Some((partner, lambda)) if *lambda < 0.5 => partner.shallow_clone(),
            _ => self.labels.shallow_clone(),
        }
    }

    /// λ·f(y) + (1−λ)·f(y_π), or f(y) without Mixup.
    pub fn loss(&self, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
        match &self.mix {
            None => f(&self.labels),
            Some((partner, lambda)) => f(&self.labels) * *lambda + f(partner) * (1.0 - lambda),
        }
    }

    /// Correct predictions, λ-weighted under Mixup (Zhang et al. 2018 (Mixup); docs/methods.md §8).
    pub fn correct(&self, logits: &Tensor) -> f64 {
        let pred = logits.argmax(-1, false);
        let hits = |y: &Tensor| pred.eq_tensor(y).sum(tch::Kind::Float).double_value(&[]);
        match &self.mix {
            None => hits(&self.labels),
            Some((partner, lambda)) => lambda * hits(&self.labels) + (1.0 - lambda) * hits(partner),
        }
    }

    /// [`Targets::correct`] as a device scalar, without a host synchronisation (for a captured
    /// step; under Mixup the weighting is done in f32 on the device).
    pub fn correct_count(&self, logits: &Tensor) -> Tensor {
        let pred = logits.argmax(-1, false);
        let hits = |y: &Tensor| pred.eq_tensor(y).sum(tch::Kind::Float);
        match &self.mix {
            None => hits(&self.labels),
            Some((partner, lambda)) => hits(&self.labels) * *lambda + hits(partner) * (1.0 - lambda),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identity: DRW changes nothing before its epoch. A criterion with `drw_epoch = 160` gives
    /// the same LDAM loss as one without DRW at every epoch before 160, and a different one from
    /// 160 on (the effective-number weights of a long-tailed count vector are not all 1).
    #[test]
    fn drw_changes_nothing_before_its_epoch() {
        let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
        let with = LossConfig { kind: LossKind::Ldam, drw_epoch: Some(160), ..LossConfig::default() };
        let without = LossConfig { drw_epoch: None, ..with.clone() };
        let (a, b) =
            (Criterion::new(&with, &counts, tch::Device::Cpu), Criterion::new(&without, &counts, tch::Device::Cpu));
        let cosines = Tensor::from_slice(&[0.3f32, -0.2, 0.9, 0.1, 0.5, -0.7, 0.2, 0.0, 0.4, 0.8]).repeat([3, 1])
            * Tensor::from_slice(&[1.0f32, -0.5, 0.25]).unsqueeze(1);
        let targets = Tensor::from_slice(&[0i64, 9, 4]);
        let loss =
            |c: &Criterion, epoch| c.head_loss(LossKind::Ldam, &cosines, None, &targets, epoch).double_value(&[]);
        for epoch in [0, 1, 159] {
            assert_eq!(loss(&a, epoch), loss(&b, epoch), "epoch {epoch}");
        }
        assert!((loss(&a, 160) - loss(&b, 160)).abs() > 1e-3, "{} vs {}", loss(&a, 160), loss(&b, 160));
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// logits [0, ln 3] → p = (1/4, 3/4) for both samples.
    fn logits() -> Tensor {
        let l3 = 3f32.ln();
        Tensor::from_slice(&[0.0f32, l3, 0.0, l3]).view([2, 2])
    }

    fn ce(z: &Tensor, y: &Tensor) -> Tensor {
        ce::cross_entropy(z, y, 0.0, None)
    }

    #[test]
    fn mixup_with_lambda_one_is_the_plain_loss() {
        let z = logits();
        let y = Tensor::from_slice(&[1i64, 0]);
        let plain = Targets::plain(y.shallow_clone()).loss(|t| ce(&z, t)).double_value(&[]);
        let mixed = Targets::mixed(y, Tensor::from_slice(&[0i64, 1]), 1.0).loss(|t| ce(&z, t)).double_value(&[]);
        close(mixed, plain);
    }

    #[test]
    fn mixup_loss_and_accuracy_by_hand() {
        let z = logits(); // both predict class 1
        let y = Tensor::from_slice(&[1i64, 0]);
        let partner = Tensor::from_slice(&[0i64, 0]);
        let t = Targets::mixed(y, partner, 0.25);
        // ℓ(y) = mean(−ln ¾, −ln ¼); ℓ(y_π) = −ln ¼.
        let (a, b) = (-(0.75f64).ln(), -(0.25f64).ln());
        close(t.loss(|y| ce(&z, y)).double_value(&[]), 0.25 * (a + b) / 2.0 + 0.75 * b);
        // Matches: y → 1 of 2, y_π → 0 of 2: 0.25·1 + 0.75·0.
        close(t.correct(&z), 0.25);
        // λ < 0.5: the partner's labels decide exits.
        assert_eq!(Vec::<i64>::try_from(t.dominant()).unwrap(), vec![0, 0]);
        let sub = t.select(&Tensor::from_slice(&[1i64]));
        assert_eq!(Vec::<i64>::try_from(&sub.labels).unwrap(), vec![0]);
        assert_eq!(sub.mix.as_ref().unwrap().1, 0.25);
    }

    #[test]
    fn non_finite_terms_are_named() {
        let bl = BatchLoss {
            total: Tensor::from(f32::NAN),
            terms: vec![
                ("exit 1 (ce)".into(), Tensor::from(0.5f32)),
                ("final head (reslt)".into(), Tensor::from(f32::NAN)),
            ],
            exit_counts: None,
        };
        let bad = bl.non_finite_terms();
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("final head (reslt)"), "{bad:?}");
    }

    /// `text` resolved with the given `key=value` overrides, as `--set` would apply them.
    fn resolve_with(text: &str, overrides: &[&str]) -> crate::config::Config {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        crate::config::resolve(text, "t", &overrides).unwrap()
    }

    /// A freshly initialised network (seed 0) of `model` and its forward pass on 64 random
    /// images labelled 0, 1, …, 9, 0, 1, … The VarStore is returned because it owns the weights.
    fn random_batch(model: &crate::model::ModelConfig) -> (tch::nn::VarStore, Network, ModelOutput, Targets) {
        tch::manual_seed(0);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = Network::new(&vs.root(), model, 10, crate::data::cifar::SHAPE).unwrap();
        let xs = Tensor::randn([64, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
        let targets = Targets::plain(Tensor::arange(64, (tch::Kind::Int64, tch::Device::Cpu)).remainder(10));
        let out = net.forward(&xs, false);
        (vs, net, out, targets)
    }

    /// A routed model with a 3-epoch warm-up gives the accumulated loss before epoch 3 and the
    /// routed one from it, on the same network and batch. τ = 0.01 lets every correct exit
    /// prediction leave, so the untrained exits already take samples and the modes differ.
    #[test]
    fn route_warmup_accumulates_then_routes() {
        let text = "[model]\nhead = \"grouped\"\nwidths = [16, 32, 48]\n[model.exits]\nkind = \"plain\"\n\
                    classifier = \"linear\"\n[loss]\nkind = \"reslt\"\nexit_threshold = 0.01\n";
        let cfg = |extra: &[&str]| resolve_with(text, extra);
        let (acc, route) = (cfg(&[]), cfg(&["loss.exit_mode=\"route\""]));
        let warm = cfg(&["loss.exit_mode=\"route\"", "loss.route_warmup_epochs=3"]);
        let (_vs, net, out, targets) = random_batch(&acc.model);
        let loss = |c: &crate::config::Config, epoch| {
            Criterion::new(&c.loss, &[1; 10], tch::Device::Cpu)
                .batch_loss(&net, &out, &targets, epoch)
                .total
                .double_value(&[])
        };
        let (a, r) = (loss(&acc, 2), loss(&route, 2));
        assert!((a - r).abs() > 1e-3, "modes must differ on this batch: {a} vs {r}");
        assert_eq!(loss(&warm, 0), a);
        assert_eq!(loss(&warm, 2), a);
        assert_eq!(loss(&warm, 3), r);
        assert_eq!(loss(&warm, 150), r);
    }

    /// The `batch` and `subset` normalisers (docs/methods.md §6) give the same ELF loss until DRW
    /// weighs the samples (epoch 3 here), and different ones from then on.
    #[test]
    fn batch_normaliser_parts_from_subset_only_under_drw() {
        let text = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"gap_fc\"\nclassifier = \"cosine\"\n\
                    [loss]\nkind = \"ldam\"\nexit_threshold = 0.01\ndrw_epoch = 3\n";
        let (subset, batch) = (resolve_with(text, &[]), resolve_with(text, &["loss.exit_normaliser=\"batch\""]));
        let (_vs, net, out, targets) = random_batch(&subset.model);
        let loss = |c: &crate::config::Config, epoch| {
            Criterion::new(&c.loss, &[100, 50, 40, 30, 20, 10, 8, 6, 4, 2], tch::Device::Cpu)
                .batch_loss(&net, &out, &targets, epoch)
                .total
                .double_value(&[])
        };
        let (s2, b2) = (loss(&subset, 2), loss(&batch, 2));
        assert!((s2 - b2).abs() < 1e-5 * s2.abs(), "before DRW: {s2} vs {b2}");
        let (s3, b3) = (loss(&subset, 3), loss(&batch, 3));
        assert!((s3 - b3).abs() > 1e-3, "under DRW the normalisers must differ: {s3} vs {b3}");
    }

    /// `loss.exit_weights` scales exit 1's and exit 2's terms and nothing else: the total is
    /// 0.3·ℓ₁ + 0.5·ℓ₂ + ℓ₃ of the unweighted run's own terms, the logged terms and the exit
    /// decision (τ = 0.01, so samples do leave early) stay as they were, and [0, 0] leaves the
    /// final head's term alone.
    #[test]
    fn exit_weights_scale_only_the_exit_terms() {
        let text = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"gap_fc\"\nclassifier = \"cosine\"\n\
                    [loss]\nkind = \"ldam\"\nexit_threshold = 0.01\n";
        let cfg = |extra: &[&str]| resolve_with(text, extra);
        let (plain, light, off) =
            (cfg(&[]), cfg(&["loss.exit_weights=[0.3, 0.5]"]), cfg(&["loss.exit_weights=[0, 0]"]));
        let (_vs, net, out, targets) = random_batch(&plain.model);
        let loss = |c: &crate::config::Config| {
            Criterion::new(&c.loss, &[100, 50, 40, 30, 20, 10, 8, 6, 4, 2], tch::Device::Cpu)
                .batch_loss(&net, &out, &targets, 0)
        };
        let values = |b: &BatchLoss| b.terms.iter().map(|(_, t)| t.double_value(&[])).collect::<Vec<_>>();
        let (p, l, o) = (loss(&plain), loss(&light), loss(&off));
        let counts = |b: &BatchLoss| Vec::<f64>::try_from(b.exit_counts.as_ref().unwrap().flatten(0, -1)).unwrap();
        assert_eq!(counts(&l), counts(&p));
        assert!(counts(&p)[..10].iter().sum::<f64>() > 0.0, "some samples must leave at exit 1");
        let t = values(&p);
        assert_eq!(t.len(), 3, "every exit gets samples under accumulate");
        assert_eq!(values(&l), t);
        // Accumulate with shares |S_k|/B: exit 1 sees the whole batch.
        let n: Vec<f64> = (0..3).map(|k| counts(&p)[k * 10..].iter().sum::<f64>() / 64.0).collect();
        close(p.total.double_value(&[]), n[0] * t[0] + n[1] * t[1] + n[2] * t[2]);
        close(l.total.double_value(&[]), 0.3 * n[0] * t[0] + 0.5 * n[1] * t[1] + n[2] * t[2]);
        close(o.total.double_value(&[]), n[2] * t[2]);
    }

    /// ELF with its exits closed from epoch 3: before it, the usual decision (τ = 0.01 lets
    /// correct exit predictions leave); from it, every sample counts at every exit, which is the
    /// loss of a run where no exit is ever confident enough (τ = 1).
    #[test]
    fn closed_exits_send_every_sample_to_the_final_head() {
        let text = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"gap_fc\"\nclassifier = \"cosine\"\n\
                    [loss]\nkind = \"ldam\"\nexit_threshold = 0.01\n";
        let cfg = |extra: &[&str]| resolve_with(text, extra);
        let (open, never, closing) = (cfg(&[]), cfg(&["loss.exit_threshold=1.0"]), cfg(&["loss.exits_close_epoch=3"]));
        let (_vs, net, out, targets) = random_batch(&open.model);
        let loss = |c: &crate::config::Config, epoch| {
            Criterion::new(&c.loss, &[100, 50, 40, 30, 20, 10, 8, 6, 4, 2], tch::Device::Cpu)
                .batch_loss(&net, &out, &targets, epoch)
        };
        let per_exit = |b: &BatchLoss| {
            Vec::<f64>::try_from(b.exit_counts.as_ref().unwrap().sum_dim_intlist(
                [1i64].as_slice(),
                false,
                tch::Kind::Double,
            ))
            .unwrap()
        };
        let early = loss(&open, 2);
        assert!(per_exit(&early)[0] > 0.0, "some samples must leave at exit 1 at τ = 0.01: {:?}", per_exit(&early));
        assert_eq!(loss(&closing, 2).total.double_value(&[]), early.total.double_value(&[]));
        let closed = loss(&closing, 3);
        assert_eq!(per_exit(&closed), vec![0.0, 0.0, 64.0]);
        assert_eq!(closed.total.double_value(&[]), loss(&never, 3).total.double_value(&[]));
        assert_eq!(per_exit(&loss(&closing, 199)), vec![0.0, 0.0, 64.0]);
    }
}
