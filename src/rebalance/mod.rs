//! Second-stage and post-hoc re-balancing of a trained run (`longtail rebalance`): methods that
//! change only how the trained network's features become class scores, each a module of its own
//! and chosen by name (`Method`):
//!
//! - `logit-adjust`: subtract τ·log(prior) from the logits (Menon et al., ICLR 2021);
//! - `tau-norm`: divide each class weight by its norm^γ (Kang et al., ICLR 2020);
//! - `crt`, `lws`: re-train the last layer, or learn a scale per class, with class-balanced
//!   sampling on a frozen backbone (Kang et al., ICLR 2020);
//! - `mislas`: MiSLAS's second stage, label-aware smoothing on the kept last layer with learnt
//!   class scales (Zhong et al., CVPR 2021).
//!
//! The backbone is run once over the training subset, the validation images `select` draws
//! (training images the subset leaves out) and the test set, keeping every head's pooled
//! features (`features`). Every setting of every method is scored on validation; the setting
//! with the highest full-depth validation accuracy is chosen (a tie goes to the setting closest
//! to the weights as trained), and only then is the test set looked at, once per method. Every
//! method acts on every head alike, exits included, so early-exit inference is scored after it
//! at the run's τ. Calibration (ECE, 15 bins) is measured as trained and after each method.
use std::path::PathBuf;

use anyhow::{bail, Result};
use tch::Tensor;

use crate::eval::saved::SavedRun;
use crate::eval::select::{validation_accuracy, validation_images};
use crate::model::classifier::LastLayer;
use crate::run::{self, StageTwoCandidate, StageTwoMethod, StageTwoReport, StageTwoScore, ValidationSelection};
use crate::score::predict::TestSet;
use crate::store::{self, Provenance};

pub mod features;
pub mod heads;
pub mod logit_adjust;
pub mod mislas;
pub mod retrain;
pub mod tau_norm;

use features::{class_prior, FeatureSet};
use heads::{Head, Scoring};

/// The reliability diagrams drawn beside the result.
pub const RELIABILITY_PLOT: &str = "stage_two_reliability.png";

/// The rule, as the result file states it.
pub const RULE: &str = "for each method, the setting with the highest full-depth validation accuracy (mean over \
                        the validation classes), a tie to the setting closest to the weights as trained; the \
                        chosen method is the one whose chosen setting validates highest (\"none\": as trained)";

/// A second-stage method, by its name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    LogitAdjust,
    TauNorm,
    Crt,
    Lws,
    Mislas,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::LogitAdjust, Method::TauNorm, Method::Crt, Method::Lws, Method::Mislas];

    pub fn name(self) -> &'static str {
        match self {
            Method::LogitAdjust => "logit-adjust",
            Method::TauNorm => "tau-norm",
            Method::Crt => "crt",
            Method::Lws => "lws",
            Method::Mislas => "mislas",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Method::LogitAdjust => logit_adjust::DESCRIPTION,
            Method::TauNorm => tau_norm::DESCRIPTION,
            Method::Crt => retrain::CRT_DESCRIPTION,
            Method::Lws => retrain::LWS_DESCRIPTION,
            Method::Mislas => mislas::DESCRIPTION,
        }
    }

    fn setting_name(self) -> &'static str {
        match self {
            Method::LogitAdjust => "τ",
            Method::TauNorm => "γ",
            Method::Crt | Method::Lws | Method::Mislas => "epochs",
        }
    }

    fn not_applicable(self, base: &[LastLayer]) -> Option<String> {
        match self {
            Method::TauNorm => tau_norm::not_applicable(base),
            _ => None,
        }
    }

    /// The heads of every setting, in order from the one closest to the weights as trained.
    fn candidates(self, ctx: &StageTwoContext) -> Vec<Setting> {
        let swept = |values: Vec<f64>, heads: &dyn Fn(f64) -> Vec<Head>| -> Vec<Setting> {
            let name = self.setting_name();
            values.into_iter().map(|v| Setting { value: v, label: format!("{name} = {v}"), heads: heads(v) }).collect()
        };
        match self {
            Method::LogitAdjust => swept(logit_adjust::settings(), &|t| logit_adjust::heads(ctx, t)),
            Method::TauNorm => swept(tau_norm::settings(), &|g| tau_norm::heads(ctx, g)),
            Method::Crt => retrain::train(ctx, retrain::Retrain::Crt, ctx.seed),
            Method::Lws => retrain::train(ctx, retrain::Retrain::Lws, ctx.seed),
            Method::Mislas => mislas::SMOOTH_HEAD
                .iter()
                .flat_map(|&eps| retrain::train(ctx, retrain::Retrain::Mislas { smooth_head: eps }, ctx.seed))
                .collect(),
        }
    }
}

/// One setting of a method: the number swept, the setting in words, and the heads it leaves.
pub struct Setting {
    pub value: f64,
    pub label: String,
    pub heads: Vec<Head>,
}

/// What every method starts from: the trained heads' last layers, the training features, the
/// class prior, and how logits become probabilities.
pub struct StageTwoContext {
    pub base: Vec<LastLayer>,
    pub train: FeatureSet,
    /// Training counts over their sum, `[C]`, and the counts.
    pub prior: Tensor,
    pub train_counts: Vec<usize>,
    pub num_classes: usize,
    /// The LDAM scale s that cosine logits are multiplied by before a softmax.
    pub softmax_scale: f64,
    pub seed: u64,
}

/// What `longtail rebalance` was asked to do.
#[derive(Debug, Clone)]
pub struct RebalanceRequest {
    pub run_dir: PathBuf,
    /// The CIFAR binary folder (the validation images are training images outside the subset).
    pub data: Option<PathBuf>,
    pub per_class: usize,
    pub methods: Vec<Method>,
}

/// The weights to start from: the epoch `select` chose, when it ran on this run and its weights
/// were kept; else the last checkpoint. Their name and epoch.
fn starting_weights(run: &mut SavedRun) -> Result<(String, usize)> {
    let selection: Option<ValidationSelection> = run.dir.validation_selection()?;
    if let Some(sel) = selection.filter(|s| s.run_epochs == run.state.epochs_done) {
        let file = run::kept_weights_file(sel.selected.epoch);
        if run.dir.exists(&file) {
            run.load(&file)?;
            return Ok((
                format!("epoch {} (chosen on validation by `select`)", sel.selected.epoch),
                sel.selected.epoch,
            ));
        }
    }
    let last = run.state.checkpoint.clone();
    run.load(&last)?;
    Ok((format!("last (epoch {})", run.state.epochs_done), run.state.epochs_done))
}

/// The index of the best-validating candidate; a tie goes to the earlier (closer to as trained).
fn best_index(validation: &[f64]) -> Option<usize> {
    (0..validation.len()).reduce(|best, i| if validation[i] > validation[best] { i } else { best })
}

/// Score every setting of `method` on validation, choose one, and score it on the test set.
fn run_method(method: Method, ctx: &StageTwoContext, sets: &Sets, scoring: &Scoring) -> StageTwoMethod {
    let mut record = StageTwoMethod {
        method: method.name().to_string(),
        description: method.description().to_string(),
        setting_name: method.setting_name().to_string(),
        candidates: Vec::new(),
        chosen: None,
        test: None,
        not_applicable: method.not_applicable(&ctx.base),
    };
    if record.not_applicable.is_some() {
        return record;
    }
    let candidates = method.candidates(ctx);
    let validation: Vec<f64> = candidates
        .iter()
        .map(|c| validation_accuracy(&scoring.full_depth(&c.heads, &sets.validation), &sets.validation_counts))
        .collect();
    record.candidates = candidates
        .iter()
        .zip(&validation)
        .map(|(c, &v)| StageTwoCandidate { setting: c.value, label: c.label.clone(), validation: v })
        .collect();
    let chosen = best_index(&validation).expect("every method has a setting");
    record.chosen = Some(record.candidates[chosen].clone());
    // Only now is the test set looked at, and only for the chosen setting.
    record.test = Some(scoring.score(&candidates[chosen].heads, &sets.test));
    record
}

/// The validation and test features, and the validation images per class.
struct Sets {
    validation: FeatureSet,
    validation_counts: Vec<usize>,
    test: FeatureSet,
}

/// Apply every requested method to the run's weights, choose on validation, score on test, and
/// write `stage_two.json` into the run directory.
pub fn rebalance_run(req: &RebalanceRequest) -> Result<StageTwoReport> {
    if req.per_class == 0 {
        bail!("--per-class 0: give at least one validation image per class");
    }
    if req.methods.is_empty() {
        bail!("no method: name at least one of {}", Method::ALL.map(Method::name).join(", "));
    }
    let mut run = SavedRun::open(&req.run_dir, req.data.as_deref())?;
    let _lock = run.dir.lock("rebalance")?;
    let (weights, epoch) = starting_weights(&mut run)?;
    let (val_images, validation) = validation_images(&run.cfg, req.data.as_deref(), req.per_class)?;
    let (net, batch, nhwc) = (&run.net, run.cfg.eval.batch_size, run.cfg.train.channels_last);
    let bar =
        indicatif::ProgressBar::new_spinner().with_message("features of the training, validation and test images");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let train = FeatureSet::extract(net, &TestSet::new(&run.data.train, run.device, nhwc), batch, true);
    let sets = Sets {
        validation: FeatureSet::extract(net, &TestSet::new(&val_images, run.device, nhwc), batch, false),
        validation_counts: validation.per_class.clone(),
        test: FeatureSet::extract(net, &run.test_set(), batch, false),
    };
    bar.finish_and_clear();
    let ctx = StageTwoContext {
        base: net.last_layers(),
        train,
        prior: class_prior(&run.data.train_counts, run.device),
        train_counts: run.data.train_counts.clone(),
        num_classes: run.num_classes(),
        softmax_scale: run.cfg.loss.ldam.scale,
        seed: run.cfg.seed,
    };
    let costs = net.cost_model();
    let scoring = Scoring {
        groups: &run.groups,
        num_classes: ctx.num_classes,
        softmax_scale: ctx.softmax_scale,
        early_exit: net.has_exits().then(|| (run.cfg.inference_exit_threshold(), &costs)),
    };
    let as_trained: Vec<Head> = ctx.base.iter().map(|l| Head::plain(l.duplicate())).collect();
    let as_trained_validation =
        validation_accuracy(&scoring.full_depth(&as_trained, &sets.validation), &sets.validation_counts);
    let as_trained_score: StageTwoScore = scoring.score(&as_trained, &sets.test);
    let bar = indicatif::ProgressBar::new(req.methods.len() as u64);
    let mut methods = Vec::new();
    for &m in &req.methods {
        bar.set_message(m.name());
        methods.push(run_method(m, &ctx, &sets, &scoring));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let chosen_method = chosen_method(as_trained_validation, &methods);
    let report = StageTwoReport {
        weights,
        epoch,
        validation,
        rule: RULE.to_string(),
        as_trained_validation,
        as_trained: as_trained_score,
        methods,
        chosen_method,
        run_epochs: run.state.epochs_done,
        provenance: Provenance::now(run.device),
    };
    store::write_json(&run.dir.file(run::STAGE_TWO_FILE), &report)?;
    Ok(report)
}

/// The method whose chosen setting validates highest; "none" (as trained) wins a tie.
fn chosen_method(as_trained: f64, methods: &[StageTwoMethod]) -> String {
    let mut best = ("none".to_string(), as_trained);
    for m in methods {
        if let Some(c) = &m.chosen {
            if c.validation > best.1 {
                best = (m.method.clone(), c.validation);
            }
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_validation_wins_and_a_tie_goes_to_the_setting_closest_to_as_trained() {
        assert_eq!(best_index(&[70.0, 72.0, 71.0]), Some(1));
        assert_eq!(best_index(&[72.0, 70.0, 72.0]), Some(0));
        assert_eq!(best_index(&[]), None);
    }

    fn method(name: &str, validation: Option<f64>) -> StageTwoMethod {
        StageTwoMethod {
            method: name.into(),
            description: String::new(),
            setting_name: "τ".into(),
            candidates: Vec::new(),
            chosen: validation.map(|v| StageTwoCandidate { setting: 1.0, label: "τ = 1".into(), validation: v }),
            test: None,
            not_applicable: validation.is_none().then(|| "no".into()),
        }
    }

    #[test]
    fn the_chosen_method_validates_highest_and_as_trained_wins_a_tie() {
        let ms = [method("logit-adjust", Some(75.0)), method("tau-norm", None), method("crt", Some(76.0))];
        assert_eq!(chosen_method(74.0, &ms), "crt");
        assert_eq!(chosen_method(76.0, &ms), "none");
        assert_eq!(chosen_method(80.0, &[]), "none");
    }

    #[test]
    fn method_names_are_the_command_lines() {
        use clap::ValueEnum;
        for m in Method::ALL {
            assert_eq!(m.to_possible_value().unwrap().get_name(), m.name());
        }
    }
}
