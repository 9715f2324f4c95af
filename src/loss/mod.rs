//! What the network is asked to do. The `[loss]` section is one table in a config, owned in
//! parts: the keys of each loss live with that loss (`ldam`, `reslt`), those of early exits with
//! the exit routing (`routing`), and each part validates itself. Which loss trains which head is
//! resolved once against the heads' outputs (`kind`), for the config check and for training.
pub mod ce;
pub mod kind;
pub mod ldam;
pub mod reslt;
pub mod routing;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::check::BadValue;
use crate::model::classifier::HeadOutputs;
use crate::model::{ModelOutput, Network};
pub use kind::{HeadLoss, LossKind};
use ldam::{DrwParams, LdamParams};
use reslt::{reslt_loss, ResltParams};
pub use routing::ExitDecision;
use routing::{combine, exit_counts, exit_indices, ExitLossParams, ExitNormaliser};

/// `[loss]` section of a config: one flat TOML table, its keys owned by the part they belong to
/// (written back in this order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossConfig {
    /// The final head's loss: `ce`, `ldam` or `reslt`.
    pub kind: LossKind,
    /// Label smoothing ε (Szegedy et al. 2016, standard form; docs/methods.md §3): target =
    /// (1−ε)·onehot + ε/C, on every cross-entropy term: CE, LDAM (after its margins) and both
    /// ResLT terms.
    pub label_smoothing: f64,
    /// `alpha`, `branch_starts` (Cui et al. 2022 (ResLT); docs/methods.md §5).
    #[serde(flatten)]
    pub reslt: ResltParams,
    /// `max_m`, `scale` (Cao et al. 2019; docs/methods.md §4).
    #[serde(flatten)]
    pub ldam: LdamParams,
    /// `drw_epoch`, `drw_beta` (Cao et al. 2019; docs/methods.md §4).
    #[serde(flatten)]
    pub drw: DrwParams,
    /// `exit_loss`, `exit_threshold`, `exit_mode`, … (docs/methods.md §6–7).
    #[serde(flatten)]
    pub exits: ExitLossParams,
    /// Keys no part claimed: a typo, refused by [`LossConfig::validate`] with its name (serde
    /// cannot deny unknown keys of a table it reads in parts).
    #[serde(flatten, skip_serializing)]
    pub unknown: toml::Table,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            kind: LossKind::Ce,
            label_smoothing: 0.0,
            reslt: ResltParams::default(),
            ldam: LdamParams::default(),
            drw: DrwParams::default(),
            exits: ExitLossParams::default(),
            unknown: toml::Table::new(),
        }
    }
}

impl LossConfig {
    /// Every key known, every number finite and in range, for a dataset of `num_classes` classes
    /// and a network with exits or not (`has_exits`).
    pub fn validate(&self, num_classes: usize, has_exits: bool) -> Result<(), BadValue> {
        if let Some((key, value)) = self.unknown.iter().next() {
            return Err(BadValue::new(
                &format!("loss.{key}"),
                value,
                "is not a key of [loss]; docs/usage.md lists them (a typo of one of them?)",
            ));
        }
        crate::check::unit_open("loss.label_smoothing", self.label_smoothing)?;
        self.reslt.validate(num_classes)?;
        self.ldam.validate()?;
        self.drw.validate()?;
        self.exits.validate(has_exits)
    }

    /// The first key of a `[loss]` table whose value cannot be read (a wrong type, an unknown
    /// variant), tried one key at a time: serde reports such errors for the whole section only.
    pub fn unreadable_key(table: &toml::Table) -> Option<&str> {
        table.iter().find_map(|(key, value)| {
            let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
            toml::Value::Table(alone).try_into::<LossConfig>().is_err().then_some(key.as_str())
        })
    }

    /// The loss of each head, exits first, resolved against what each head outputs (`exits`,
    /// when the network has exits, then `last`); a loss that does not fit its head is an error
    /// naming the key that chose it.
    pub fn plan(&self, exits: Option<HeadOutputs>, last: HeadOutputs) -> Result<LossPlan, BadValue> {
        let refuse = |key: &str, kind: LossKind, why: &str| BadValue::new(key, format!("\"{}\"", kind.name()), why);
        let last_loss = HeadLoss::resolve(self.kind, last).map_err(|why| refuse("loss.kind", self.kind, why))?;
        let exit_loss = match exits {
            None => None,
            Some(outputs) => {
                let kind = self.exits.exit_loss_kind(self.kind, outputs);
                let key = if self.exits.exit_loss.is_some() { "loss.exit_loss" } else { "loss.exit_loss (default)" };
                Some(HeadLoss::resolve(kind, outputs).map_err(|why| refuse(key, kind, why))?)
            }
        };
        // The margin decision reads the confidence an exit's own LDAM loss sees (docs/methods.md §6).
        let margin_ok = exit_loss == Some(HeadLoss::Ldam);
        crate::check::require(
            self.exits.exit_decision != ExitDecision::Margin || margin_ok,
            "loss.exit_decision",
            "\"margin\"",
            "needs early exits trained with LDAM (cosine exits and loss.kind or loss.exit_loss = \"ldam\")",
        )?;
        Ok(LossPlan { exits: exit_loss, last: last_loss })
    }
}

/// The loss of each head of one network: what `LossConfig::plan` resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossPlan {
    /// Both exits' loss (the two exits share a design); None without exits.
    pub exits: Option<HeadLoss>,
    pub last: HeadLoss,
}

/// A loss ready for training: the config and its plan for the network's heads, plus what depends
/// on the training set (LDAM margins, DRW weights), computed once on the training device.
pub struct Criterion {
    cfg: LossConfig,
    plan: LossPlan,
    num_classes: usize,
    margins: Tensor,
    drw_weights: Tensor,
}

impl Criterion {
    /// The criterion for `net` (its heads' outputs decide each head's loss; a config that passed
    /// `Config::validate` always fits the network built from it).
    pub fn new(cfg: &LossConfig, net: &Network, train_counts: &[usize], device: tch::Device) -> Result<Self, BadValue> {
        let (exits, last) = net.head_outputs();
        let plan = cfg.plan(exits, last)?;
        let f32s = |v: Vec<f64>| Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<_>>()).to_device(device);
        Ok(Criterion {
            cfg: cfg.clone(),
            plan,
            num_classes: train_counts.len(),
            margins: f32s(ldam::margins(train_counts, cfg.ldam.max_m)),
            drw_weights: f32s(ldam::effective_number_weights(train_counts, cfg.drw.drw_beta)),
        })
    }

    /// Class weights in force at `epoch` (None = all ones).
    pub fn class_weights(&self, epoch: usize) -> Option<&Tensor> {
        self.cfg.drw.active_at(epoch).then_some(&self.drw_weights)
    }

    /// One head's loss on its outputs (`branches` for ResLT heads) against plain labels.
    fn head_loss(
        &self,
        loss: HeadLoss,
        logits: &Tensor,
        branches: Option<&Tensor>,
        targets: &Tensor,
        epoch: usize,
    ) -> Tensor {
        let weights = self.class_weights(epoch);
        let sets = self.cfg.reslt.branch_sets(self.num_classes);
        let (alpha, eps) = (self.cfg.reslt.alpha, self.cfg.label_smoothing);
        // The plan resolved every head's loss against that head's outputs, so a branch loss
        // always meets a head with branches.
        let branches = || branches.expect("the loss plan gives branch losses to ResLT heads only");
        match loss {
            HeadLoss::CrossEntropy => ce::cross_entropy(logits, targets, eps, weights),
            HeadLoss::Ldam => ldam::ldam_loss(logits, targets, &self.margins, self.cfg.ldam.scale, eps, weights),
            HeadLoss::Reslt => reslt_loss(branches(), targets, sets, alpha, eps),
            // LDAM on a ResLT exit (the report's model 5, "margins on every branch"): every
            // branch's true-class logit is lowered by the class margin before the ResLT loss.
            HeadLoss::LdamOnBranches => {
                let lowered = ldam::subtract_margins(branches(), targets, &self.margins);
                reslt_loss(&lowered, targets, sets, alpha, eps)
            }
        }
    }

    /// The training loss of one batch at `epoch`, with each term named for the divergence guard.
    /// With early exits the samples are spread over the exits by the detached exit decision
    /// (docs/methods.md §6–7; computing it without gradient is ours) and each exit applies its own
    /// loss to its own samples. With Mixup every term is λ·ℓ(y) + (1−λ)·ℓ(y_π) and the exit
    /// decision uses the label with the larger weight.
    pub fn batch_loss(&self, net: &Network, out: &ModelOutput, targets: &Targets, epoch: usize) -> BatchLoss {
        let last = self.plan.last;
        let exit_loss = match self.plan.exits {
            Some(loss) if !out.exits.is_empty() => loss,
            _ => {
                let total = targets.loss(|y| self.head_loss(last, &out.logits, out.branches.as_ref(), y, epoch));
                return BatchLoss {
                    terms: vec![(format!("final head ({})", last.kind().name()), total.shallow_clone())],
                    total,
                    exit_counts: None,
                };
            }
        };
        let exits_cfg = &self.cfg.exits;
        let k_final = out.exits.len();
        let decided_by = targets.dominant();
        let exit = if exits_cfg.exits_closed_at(epoch) {
            decided_by.full_like(k_final as i64)
        } else {
            self.exit_decision(net, out, &decided_by)
        };
        // Per-sample weights for the `batch` normaliser (ours, docs/methods.md §6): the class
        // weight of the label that decided the exit (with Mixup, the dominant one).
        let sample_weights = match exits_cfg.exit_normaliser {
            ExitNormaliser::Batch => self.class_weights(epoch).map(|w| w.index_select(0, &decided_by)),
            ExitNormaliser::Subset => None,
        };
        let mut terms = Vec::new();
        let total = combine(&exit, k_final + 1, exits_cfg.exit_mode_at(epoch), sample_weights.as_ref(), |k, idx| {
            let (logits, branches, loss, name) = if k == k_final {
                (&out.logits, out.branches.as_ref(), last, "final head".to_string())
            } else {
                let e = &out.exits[k];
                (&e.logits, e.branches.as_ref(), exit_loss, format!("exit {}", k + 1))
            };
            let sub = targets.select(idx);
            let sub_logits = logits.index_select(0, idx);
            let sub_branches = branches.map(|b| b.index_select(1, idx));
            let term = sub.loss(|y| self.head_loss(loss, &sub_logits, sub_branches.as_ref(), y, epoch));
            terms.push((format!("{name} ({})", loss.kind().name()), term.shallow_clone()));
            // The final head keeps weight 1 (there are two exits, so k < k_final indexes them). A
            // factor of 1 is skipped, not multiplied, so default runs keep the graph they had.
            let weight = if k == k_final { 1.0 } else { exits_cfg.exit_weights[k] };
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
        let scale = self.cfg.ldam.scale;
        let mut preds = net.prediction_logits(out, scale);
        if self.cfg.exits.exit_decision == ExitDecision::Margin {
            let scaled_margins = &self.margins * scale;
            tch::no_grad(|| {
                for z in preds.iter_mut().take(k_final) {
                    *z = ldam::subtract_margins(z, labels, &scaled_margins);
                }
            });
        }
        exit_indices(&preds, labels, self.cfg.exits.exit_threshold)
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
        let with = LossConfig {
            kind: LossKind::Ldam,
            drw: DrwParams { drw_epoch: Some(160), ..DrwParams::default() },
            ..LossConfig::default()
        };
        let without = LossConfig { drw: DrwParams::default(), ..with.clone() };
        let model = crate::model::ModelConfig { head: crate::model::HeadKind::Cosine, ..Default::default() };
        let (_vs, net) = network(&model);
        let criterion = |c: &LossConfig| Criterion::new(c, &net, &counts, tch::Device::Cpu).unwrap();
        let (a, b) = (criterion(&with), criterion(&without));
        let cosines = Tensor::from_slice(&[0.3f32, -0.2, 0.9, 0.1, 0.5, -0.7, 0.2, 0.0, 0.4, 0.8]).repeat([3, 1])
            * Tensor::from_slice(&[1.0f32, -0.5, 0.25]).unsqueeze(1);
        let targets = Tensor::from_slice(&[0i64, 9, 4]);
        let loss =
            |c: &Criterion, epoch| c.head_loss(HeadLoss::Ldam, &cosines, None, &targets, epoch).double_value(&[]);
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

    /// A freshly initialised network of `model` for CIFAR-10; the VarStore owns its weights.
    fn network(model: &crate::model::ModelConfig) -> (tch::nn::VarStore, Network) {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = Network::new(&vs.root(), model, 10, crate::data::cifar::SHAPE).unwrap();
        (vs, net)
    }

    /// A freshly initialised network (seed 0) of `model` and its forward pass on 64 random
    /// images labelled 0, 1, …, 9, 0, 1, … The VarStore is returned because it owns the weights.
    fn random_batch(model: &crate::model::ModelConfig) -> (tch::nn::VarStore, Network, ModelOutput, Targets) {
        tch::manual_seed(0);
        let (vs, net) = network(model);
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
            Criterion::new(&c.loss, &net, &[1; 10], tch::Device::Cpu)
                .unwrap()
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
            Criterion::new(&c.loss, &net, &[100, 50, 40, 30, 20, 10, 8, 6, 4, 2], tch::Device::Cpu)
                .unwrap()
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
            Criterion::new(&c.loss, &net, &[100, 50, 40, 30, 20, 10, 8, 6, 4, 2], tch::Device::Cpu)
                .unwrap()
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
            Criterion::new(&c.loss, &net, &[100, 50, 40, 30, 20, 10, 8, 6, 4, 2], tch::Device::Cpu)
                .unwrap()
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
