//! What analyses after training add to a run, as plain records: early-exit timing
//! (`eval --timing`), precise-BN and weight-average evaluations, the epoch chosen on validation
//! (`select`), the second-stage methods (`rebalance`), and the parent of a forked run. The code that computes each lives with its
//! analysis (`eval::precise_bn`, `eval::select`, `train::fork`); the records live here so that a
//! run's summary can hold them without importing that code. The early-exit result itself
//! (`EarlyExit`, `ExitTiming`) is defined where it is computed, in `score::early_exit`, which
//! sits below the records.
use serde::{Deserialize, Serialize};

use super::{EpochScore, Resume, Weights};
use crate::score::calibration::Calibration;
use crate::score::early_exit::{EarlyExit, ExitTiming};
use crate::score::metrics::{fmt_group, Accuracy};
use crate::store::Provenance;

/// `eval --timing`'s evidence: the measurements with where, when and by what they were taken.
/// Written to the run directory (`run::TIMING_FILE`); `publish` attaches it to the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimingReport {
    /// Which weights were timed (`last` or `best`), and their epoch. Files written before the
    /// epoch was recorded have none; `publish` cannot check those against the run.
    pub weights: Weights,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<usize>,
    #[serde(flatten)]
    pub provenance: Provenance,
    pub machine: String,
    pub engine: String,
    pub rows: Vec<ExitTiming>,
}

/// `eval --precise-bn`'s evidence, written to the run directory (`run::PRECISE_BN_FILE`);
/// `publish` attaches it to the result beside the trainer's own (moving-average) numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreciseBnReport {
    /// Which weights (`last` or `best`) and the epoch they are from.
    pub weights: Weights,
    pub epoch: usize,
    /// Set for `eval --average-from`: the weights are the mean of the kept weights of epochs
    /// `averaged_from..=epoch` (`eval::average`), with BN statistics recomputed for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged_from: Option<usize>,
    /// BN layers recomputed, and the training batches and images they were averaged over.
    pub layers: usize,
    pub batches: usize,
    pub images: usize,
    /// Full-depth test accuracy with the recomputed statistics.
    pub full_depth: Accuracy,
    /// Runs with exits: each exit answering every test image alone, and early-exit inference at
    /// the configured τ, both with the recomputed statistics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exits_alone: Vec<Accuracy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit: Option<EarlyExit>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// Where the validation images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSet {
    pub source: String,
    pub seed: u32,
    /// Images per class (0 for a class the subset uses up).
    pub per_class: Vec<usize>,
    pub images: usize,
}

/// One kept epoch: its validation accuracy, and the test accuracy training logged for it (shown,
/// never used to choose).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub epoch: usize,
    pub validation: f64,
    pub test: Option<f64>,
}

/// `validation_selection.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationSelection {
    pub validation: ValidationSet,
    pub rule: String,
    pub candidates: Vec<Candidate>,
    /// The chosen epoch's test accuracy at full depth, recomputed from its weights.
    pub selected: EpochScore,
    pub selected_validation: f64,
    /// Runs with exits: early-exit inference of the chosen weights at the configured τ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit: Option<EarlyExit>,
    /// The run's last epoch when the selection was made (`publish` refuses a stale file).
    pub run_epochs: usize,
    pub provenance: Provenance,
}

impl ValidationSelection {
    /// The text `longtail select` prints.
    pub fn render(&self) -> String {
        let v = &self.validation;
        let mut s = format!(
            "Validation set: {} images ({}), per class {:?}, seed {}.\nRule: {}.\n\n| epoch | validation | test (logged) |\n|---:|---:|---:|\n",
            v.images, v.source, v.per_class, v.seed, self.rule
        );
        for c in &self.candidates {
            let mark = if c.epoch == self.selected.epoch { " ←" } else { "" };
            s.push_str(&format!("| {}{mark} | {:.2} | {} |\n", c.epoch, c.validation, fmt_group(c.test)));
        }
        let sel = &self.selected;
        s.push_str(&format!(
            "\nSelected epoch {} (validation {:.2}): test overall {:.2}, many {}, medium {}, few {}.\n",
            sel.epoch,
            self.selected_validation,
            sel.overall,
            fmt_group(sel.many),
            fmt_group(sel.medium),
            fmt_group(sel.few)
        ));
        if let Some(e) = &self.early_exit {
            s.push_str(&format!(
                "Early exit at τ = {}: test overall {:.2}, {:.1} % of the MACs saved.\n",
                e.threshold,
                e.overall,
                100.0 * e.saving
            ));
        }
        s
    }
}

/// Where a forked run came from (`RunMeta::forked_from`, `Summary::forked_from`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fork {
    /// The parent's run directory, as given to `--fork-from`.
    pub parent: String,
    pub parent_name: String,
    /// The fork continues from the parent's checkpoint after this many epochs.
    pub after_epoch: usize,
    /// How the parent's epochs were made: its command, binary commit and resumes.
    pub parent_command: String,
    pub parent_commit: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_resumes: Vec<Resume>,
    /// Every resolved config key that differs from the parent's, as `key: parent → fork`.
    pub changed: Vec<String>,
}

/// What a set of weights (as trained, or after a second-stage method) scores on the test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTwoScore {
    /// Full depth: the final head answers every image.
    pub full_depth: Accuracy,
    /// Of the final head's softmax confidence (15 equal-width bins).
    pub calibration: Calibration,
    /// Runs with exits: early-exit inference at the run's configured τ, every head adjusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit: Option<EarlyExit>,
}

/// One setting a method tried, and its full-depth validation accuracy (mean over classes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTwoCandidate {
    /// The number swept (τ, γ, epochs), and the whole setting in words ("τ = 0.6",
    /// "ε_head = 0.2, epochs = 7").
    pub setting: f64,
    pub label: String,
    pub validation: f64,
}

/// One second-stage method applied to the run's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTwoMethod {
    /// Its name on the command line (`logit-adjust`, `tau-norm`, `crt`, `lws`, …).
    pub method: String,
    /// What it changes, and on which logits.
    pub description: String,
    /// The hyperparameter chosen on validation (e.g. "τ", "epochs").
    pub setting_name: String,
    /// Every setting tried, with its validation accuracy; empty when the method does not apply.
    pub candidates: Vec<StageTwoCandidate>,
    /// The chosen setting and its validation accuracy; `None` when the method does not apply.
    pub chosen: Option<StageTwoCandidate>,
    /// Test-set scores of the chosen setting (looked at once, after choosing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<StageTwoScore>,
    /// Why the method does not apply to this model, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
}

/// `stage_two.json`: the run's weights as trained and after each second-stage method, every
/// setting chosen on the validation images `select` draws, never on the test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTwoReport {
    /// The weights the methods start from: the epoch `select` chose where it ran, else the last.
    pub weights: String,
    pub epoch: usize,
    pub validation: ValidationSet,
    pub rule: String,
    /// The weights as trained: validation accuracy and test scores.
    pub as_trained_validation: f64,
    pub as_trained: StageTwoScore,
    pub methods: Vec<StageTwoMethod>,
    /// The method with the highest validation accuracy (as trained counts as one: "none").
    pub chosen_method: String,
    /// The run's last epoch when this was computed (`publish` refuses a stale file).
    pub run_epochs: usize,
    pub provenance: Provenance,
}

impl StageTwoReport {
    /// The header and rows of the comparison: as trained, then each method at its chosen
    /// setting; "←" marks the one chosen on validation.
    pub fn table(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let head =
            ["method", "setting", "validation", "test", "many / medium / few", "ECE", "early exit (acc, MACs saved)"];
        let row = |name: &str, setting: String, validation: f64, score: &StageTwoScore| {
            let a = &score.full_depth;
            let chosen = name == self.chosen_method || (name == "as trained" && self.chosen_method == "none");
            let exit = score
                .early_exit
                .as_ref()
                .map_or("—".to_string(), |e| format!("{:.2}, {:.1} %", e.overall, 100.0 * e.saving));
            vec![
                format!("{name}{}", if chosen { " ←" } else { "" }),
                setting,
                format!("{validation:.2}"),
                format!("{:.2}", a.overall),
                format!("{} / {} / {}", fmt_group(a.many), fmt_group(a.medium), fmt_group(a.few)),
                format!("{:.2}", score.calibration.ece),
                exit,
            ]
        };
        let mut rows = vec![row("as trained", "—".into(), self.as_trained_validation, &self.as_trained)];
        for m in &self.methods {
            rows.push(match (&m.chosen, &m.test) {
                (Some(c), Some(test)) => {
                    row(&m.method, format!("{} = {}", m.setting_name, c.setting), c.validation, test)
                }
                _ => {
                    let why = m.not_applicable.as_deref().unwrap_or("no setting");
                    let mut r = vec![m.method.clone(), format!("does not apply: {why}")];
                    r.resize(head.len(), String::new());
                    r
                }
            });
        }
        (head.map(String::from).to_vec(), rows)
    }

    /// What the table's marks and columns mean.
    pub const LEGEND: &'static str = "← chosen on validation. ECE: expected calibration error of the final head's \
                                       confidence over 15 bins, in points. Early exit at the run's τ, every head \
                                       re-balanced alike.";

    /// The text `longtail rebalance` prints.
    pub fn render(&self) -> String {
        let v = &self.validation;
        let (head, rows) = self.table();
        let mut s = format!(
            "Weights: {}. Validation set: {} images ({}), per class {:?}.\nRule: {}.\n\n| {} |\n|{}\n",
            self.weights,
            v.images,
            v.source,
            v.per_class,
            self.rule,
            head.join(" | "),
            "---|".repeat(head.len())
        );
        rows.iter().for_each(|r| s.push_str(&format!("| {} |\n", r.join(" | "))));
        s.push_str(&format!("\n{}\n", Self::LEGEND));
        s
    }

    /// Every way of scoring the weights that has test scores, named: as trained, then each
    /// method with its chosen setting (the reliability diagram's panels).
    pub fn scored(&self) -> Vec<(String, &StageTwoScore)> {
        let mut out = vec![("as trained".to_string(), &self.as_trained)];
        for m in &self.methods {
            if let (Some(c), Some(t)) = (&m.chosen, &m.test) {
                out.push((format!("{} ({})", m.method, c.label), t));
            }
        }
        out
    }

    /// The test scores of the method chosen on validation (as trained when it is "none").
    pub fn chosen_score(&self) -> &StageTwoScore {
        self.methods
            .iter()
            .find(|m| m.method == self.chosen_method)
            .and_then(|m| m.test.as_ref())
            .unwrap_or(&self.as_trained)
    }
}
