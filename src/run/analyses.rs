//! What analyses after training add to a run, as plain records: early-exit timing
//! (`eval --timing`), precise-BN and weight-average evaluations, the epoch chosen on validation
//! (`select`), and the parent of a forked run. The code that computes each lives with its
//! analysis (`eval::precise_bn`, `eval::select`, `train::fork`); the records live here so that a
//! run's summary can hold them without importing that code. The early-exit result itself
//! (`EarlyExit`, `ExitTiming`) is defined where it is computed, in `score::early_exit`, which
//! sits below the records.
use serde::{Deserialize, Serialize};

use super::{EpochScore, Resume, Weights};
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
