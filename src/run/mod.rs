//! A run directory and its records as plain serde types: the resolved config, metadata, metrics
//! per epoch, checkpoints, the final summary, and what later analyses add to it (`analyses`).
//! Records import only the ground floor (`store`) and the leaf types they hold (accuracies,
//! precision), so every layer that writes or reads a run can import them. Files that matter are written atomically (temp file in the same folder, fsync,
//! rename), so a killed run never leaves a half-written checkpoint or summary behind.
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::model::precision::Precision;
use crate::score::early_exit::EarlyExit;
use crate::score::metrics::{Accuracy, Group, GroupAcc, GroupExitFractions};
use crate::store::{atomic_write, read_json};

mod analyses;
pub use analyses::{
    Candidate, Fork, PreciseBnReport, StageTwoCandidate, StageTwoMethod, StageTwoReport, StageTwoScore, TimingReport,
    ValidationSelection, ValidationSet,
};

pub const CONFIG_FILE: &str = "config.toml";
pub const META_FILE: &str = "meta.json";
pub const STATE_FILE: &str = "state.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const SUMMARY_FILE: &str = "summary.json";
pub const BEST_WEIGHTS: &str = "best.ot";
/// Written when the divergence guard stops a run: the message, for `reproduce` and for people.
/// `eval --timing`'s measurements (`TimingReport`), attached to the result by `publish`.
pub const TIMING_FILE: &str = "early_exit_timing.json";
/// `eval --precise-bn`'s result (`PreciseBnReport`, computed by `eval::precise_bn`).
pub const PRECISE_BN_FILE: &str = "precise_bn.json";
/// `eval --average-from`'s result: a `PreciseBnReport` of the averaged weights.
pub const WEIGHT_AVERAGE_FILE: &str = "weight_average.json";
/// `select`'s result: the epoch chosen on held-out validation images (`eval::select`).
pub const SELECTION_FILE: &str = "validation_selection.json";
/// `rebalance`'s result: second-stage methods chosen on validation (`StageTwoReport`).
pub const STAGE_TWO_FILE: &str = "stage_two.json";
pub const FAILURE_FILE: &str = "failure.txt";
/// The writer lock of a run directory ([`RunDir::lock`]); it names its holder.
pub const LOCK_FILE: &str = "run.lock";
/// Where `train --keep-weights-from N` keeps each epoch's weights (`eval --average-from`).
pub const KEPT_WEIGHTS_DIR: &str = "weights";

/// The kept weights of `epoch` inside a run directory: `weights/epoch-EEEE.ot`.
pub fn kept_weights_file(epoch: usize) -> String {
    format!("{KEPT_WEIGHTS_DIR}/epoch-{epoch:04}.ot")
}

/// Where and how a run was made: everything needed to cite or repeat it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub name: String,
    /// The config file the run was started from (the resolved copy is `config.toml`).
    pub config: Option<String>,
    pub command: String,
    pub commit: String,
    pub seed: u64,
    pub device: String,
    pub machine: String,
    pub engine: String,
    pub started_at: String,
    /// Every later invocation that continued the run (`--resume`), in order: a result names each
    /// binary and machine that produced part of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<Resume>,
    /// Set when the run started from another run's checkpoint (`train --fork-from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<Fork>,
}

/// One `--resume` of a run: which binary continued it, where, and from which epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    pub after_epoch: usize,
    /// Steps of the next epoch the run had already trained when it stopped (on a signal).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub after_step: usize,
    pub at: String,
    pub command: String,
    pub commit: String,
    pub device: String,
    pub machine: String,
}

impl Resume {
    /// The record of `invocation` (this process's own [`RunMeta`]) continuing a run after
    /// `after_epoch`.
    pub fn of(invocation: &RunMeta, after_epoch: usize, after_step: usize) -> Self {
        Resume {
            after_epoch,
            after_step,
            at: invocation.started_at.clone(),
            command: invocation.command.clone(),
            commit: invocation.commit.clone(),
            device: invocation.device.clone(),
            machine: invocation.machine.clone(),
        }
    }
}

/// Which of a run's saved weights (`eval --weights`, and what the analyses' files describe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// The last checkpoint.
    Last,
    /// The best test epoch's weights (`best.ot`).
    Best,
}

impl Weights {
    pub fn as_str(self) -> &'static str {
        match self {
            Weights::Last => "last",
            Weights::Best => "best",
        }
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Weights {
    type Err = UnknownWeights;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "last" => Ok(Weights::Last),
            "best" => Ok(Weights::Best),
            other => Err(UnknownWeights(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--weights {0:?}: use last or best")]
pub struct UnknownWeights(pub String);

/// Accuracy at one epoch (1-based: epoch 200 is the last of a 200-epoch run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochScore {
    pub epoch: usize,
    pub overall: f64,
    pub many: GroupAcc,
    pub medium: GroupAcc,
    pub few: GroupAcc,
}

impl EpochScore {
    pub fn new(epoch: usize, acc: &Accuracy) -> Self {
        EpochScore { epoch, overall: acc.overall, many: acc.many, medium: acc.medium, few: acc.few }
    }
}

/// Progress saved with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Number of finished epochs.
    pub epochs_done: usize,
    pub checkpoint: String,
    pub best: Option<EpochScore>,
    pub last: Option<EpochScore>,
    /// Training wall time so far, summed over resumed segments.
    pub wall_seconds: f64,
    /// Steps of the next epoch already trained: a run stopped by a signal checkpoints mid-epoch
    /// (`ckpt-EEEE-SSSSS.ot`); 0 between epochs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step: usize,
    /// That epoch's sums over those steps, so its metrics line comes out as if it had never
    /// stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_epoch: Option<EpochSums>,
}

/// What an epoch's steps add up to (its metrics line is made from these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    pub loss_sum: f64,
    pub correct: f64,
    pub seen: usize,
    /// Training images leaving at each exit, per class: [exit][class] (empty without exits).
    pub exit_counts: Vec<Vec<f64>>,
    pub train_seconds: f64,
    pub data_wait_seconds: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub images_per_second: f64,
    pub seconds: f64,
    /// Seconds the training loop waited for the data workers during the epoch.
    #[serde(default)]
    pub data_wait_seconds: f64,
    /// With early exits: the share of training samples leaving at each exit over the epoch (the
    /// detached training-time decision; the last entry is the final head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_exit_fractions: Option<Vec<f64>>,
    /// The same per Many/Medium/Few group (shares of that group's training samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_exit_fractions_by_group: Option<GroupExitFractions>,
    /// The training samples of each class leaving at each exit over the epoch, `[exit][class]`
    /// (the counts behind the shares above; shows a routed exit that keeps one class to itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_exit_counts: Option<Vec<Vec<u64>>>,
    pub test: Option<Accuracy>,
    /// ResLT: accuracy of each branch alone (head, medium, tail), when evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_branches: Option<Vec<Accuracy>>,
}

/// The layout of `summary.json` and of the `results/*.json` that `publish` copies from it.
/// Version 1 is every result written before the version was recorded; they all load as they are.
/// A field added with a default needs no new version; one whose meaning changes, or that goes,
/// does, and a reader refuses a version newer than its own ([`Summary::read`]).
pub const SUMMARY_SCHEMA: u32 = 2;

fn first_schema() -> u32 {
    1
}

/// The run's final result; `longtail publish` copies it into `results/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default = "first_schema")]
    pub schema_version: u32,
    pub name: String,
    pub config: Option<String>,
    pub command: String,
    pub commit: String,
    pub seed: u64,
    pub dataset: Dataset,
    pub rho: f64,
    pub subset_seed: u32,
    pub epochs: usize,
    pub best: EpochScore,
    pub last: EpochScore,
    pub groups: GroupsInfo,
    pub last_per_class: Vec<f64>,
    pub last_confusion: Vec<Vec<u32>>,
    /// ResLT: each branch alone at the last epoch (head, medium, tail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_branches: Option<Vec<Accuracy>>,
    /// Runs with exits: each early exit answering every test image by itself, last weights
    /// (exit 1, exit 2; the final head is `last`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exits_alone: Option<Vec<Accuracy>>,
    /// Runs with exits: early-exit inference of the last weights at the configured τ
    /// (`best`/`last` above are full-depth numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit: Option<EarlyExit>,
    /// Runs with exits: the same at several τ (accuracy versus MACs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early_exit_sweep: Vec<EarlyExit>,
    pub wall_seconds: f64,
    /// The training forward pass's precision (`train.precision`). Results written before this
    /// field existed were all trained in fp32, the default it reads as.
    #[serde(default)]
    pub precision: Precision,
    pub device: String,
    pub machine: String,
    pub engine: String,
    pub started_at: String,
    pub finished_at: String,
    /// The resumes of the run (see [`RunMeta::resumes`]); empty when one invocation did it all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<Resume>,
    /// The run this one was forked from (`train --fork-from`): its epochs up to `after_epoch`,
    /// and their wall time, are the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<Fork>,
    /// Wall-clock of early exits against full depth (`eval --timing`, measured after training;
    /// attached by `publish` from `TIMING_FILE`, never written by the trainer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_exit_timing: Option<TimingReport>,
    /// The same weights evaluated with BatchNorm statistics averaged over many training batches
    /// (`eval --precise-bn`; attached by `publish` from `PRECISE_BN_FILE`). `best`/`last` above
    /// keep the moving averages training left, as every reference codebase reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precise_bn: Option<PreciseBnReport>,
    /// The mean of the weights of the last epochs, with precise BN (`eval --average-from`;
    /// attached by `publish` from `WEIGHT_AVERAGE_FILE`). A final model chosen by a rule, not by
    /// the test set, beside `last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_average: Option<PreciseBnReport>,
    /// The epoch chosen on held-out validation images and its test accuracy (`select`; attached
    /// by `publish` from `SELECTION_FILE`): a selected epoch that did not look at the test set,
    /// beside `best`, which did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_on_validation: Option<ValidationSelection>,
    /// Second-stage methods on the same weights, chosen on validation, with calibration
    /// (`rebalance`; attached by `publish` from `STAGE_TWO_FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_two: Option<StageTwoReport>,
}

impl Summary {
    /// Read a summary or published result, refusing one written by a newer longtail (whose
    /// fields this one could misread).
    pub fn read(path: &Path) -> Result<Summary> {
        let summary: Summary = read_json(path)?;
        if summary.schema_version > SUMMARY_SCHEMA {
            bail!(
                "{} was written by a newer longtail (summary schema {}; this one reads up to {SUMMARY_SCHEMA}): update longtail to read it",
                path.display(),
                summary.schema_version
            );
        }
        Ok(summary)
    }

    /// The epoch of the run's `last` or `best` weights.
    pub fn epoch_of(&self, weights: Weights) -> usize {
        match weights {
            Weights::Last => self.last.epoch,
            Weights::Best => self.best.epoch,
        }
    }

    /// The last epoch's accuracy with its per-class values, as plots take it.
    pub fn last_accuracy(&self) -> Accuracy {
        Accuracy {
            overall: self.last.overall,
            many: self.last.many,
            medium: self.last.medium,
            few: self.last.few,
            per_class: self.last_per_class.clone(),
        }
    }

    /// Each part that answers alone at the last epoch (ResLT branches, early exits), labelled
    /// as every table shows it.
    pub fn last_parts_alone(&self) -> Vec<(String, &Accuracy)> {
        crate::score::metrics::parts_alone(
            self.last_branches.as_deref().unwrap_or(&[]),
            self.last_exits_alone.as_deref().unwrap_or(&[]),
        )
    }
}

/// The Many/Medium/Few convention used, printed with every table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupsInfo {
    pub rule: String,
    pub train_counts: Vec<usize>,
    pub many: Vec<usize>,
    pub medium: Vec<usize>,
    pub few: Vec<usize>,
}

impl GroupsInfo {
    pub fn new(rule: String, train_counts: Vec<usize>, assignment: &[Group]) -> Self {
        let members = |g| assignment.iter().enumerate().filter(|(_, &a)| a == g).map(|(c, _)| c).collect();
        GroupsInfo {
            rule,
            many: members(Group::Many),
            medium: members(Group::Medium),
            few: members(Group::Few),
            train_counts,
        }
    }

    /// The group of every class, from the lists (a class in none of them is Medium).
    pub fn assignment(&self) -> Vec<Group> {
        let mut groups = vec![Group::Medium; self.train_counts.len()];
        for &c in &self.many {
            groups[c] = Group::Many;
        }
        for &c in &self.few {
            groups[c] = Group::Few;
        }
        groups
    }
}

/// What the analyses after training add to a run ([`RunDir::analyses`]).
#[derive(Debug, Clone, Default)]
pub struct Analyses {
    pub timing: Option<TimingReport>,
    pub precise_bn: Option<PreciseBnReport>,
    pub weight_average: Option<PreciseBnReport>,
    pub selection: Option<ValidationSelection>,
    pub stage_two: Option<StageTwoReport>,
}

/// Where a run stands, read from its directory alone (no process is asked): the one answer that
/// `reproduce`, the report table and `status` build on.
#[derive(Debug)]
pub enum RunStatus {
    NotStarted,
    /// Checkpointed after `epochs_done` of `epochs` epochs; `--resume` continues it.
    Partial {
        epochs_done: usize,
        epochs: usize,
    },
    /// Stopped by the divergence guard (or another error the trainer recorded); the message.
    Failed(String),
    Finished(Box<Summary>),
}

/// The status of the run in `dir`. A summary or state file that exists but does not read is an
/// error naming it, never "not finished": a finished run must not be trained over.
pub fn status(dir: &Path) -> Result<RunStatus> {
    let d = RunDir::new(dir);
    if d.exists(SUMMARY_FILE) {
        return Ok(RunStatus::Finished(Box::new(Summary::read(&d.file(SUMMARY_FILE))?)));
    }
    if d.exists(FAILURE_FILE) {
        let path = d.file(FAILURE_FILE);
        let msg =
            crate::store::read_regular_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(RunStatus::Failed(msg.trim().to_string()));
    }
    if !d.exists(STATE_FILE) {
        return Ok(RunStatus::NotStarted);
    }
    let state: TrainState = read_json(&d.file(STATE_FILE))?;
    Ok(RunStatus::Partial { epochs_done: state.epochs_done, epochs: configured_epochs(&d).unwrap_or(0) })
}

/// `train.epochs` of the run's resolved config (read as plain TOML: records sit below `config`).
fn configured_epochs(d: &RunDir) -> Option<usize> {
    let text = fs::read_to_string(d.file(CONFIG_FILE)).ok()?;
    let table: toml::Table = text.parse().ok()?;
    table.get("train")?.get("epochs")?.as_integer().map(|e| e as usize)
}

/// A run directory on disk.
pub struct RunDir {
    pub path: PathBuf,
}

/// A held run-directory lock; dropping it (or the process ending, however it ends) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// Become the run directory's one writer for `purpose` ("train", "select", …): an advisory
    /// OS lock (flock) on `LOCK_FILE`, so a second training, a resume beside a live one, or an
    /// evaluation writing into a run that is training is refused instead of interleaving its
    /// files. The kernel drops the lock when the process dies, so a killed run never stays
    /// "locked". Creates the directory if needed.
    pub fn lock(&self, purpose: &str) -> Result<RunLock> {
        fs::create_dir_all(&self.path).with_context(|| format!("cannot create {}", self.path.display()))?;
        let path = self.file(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns; it touches no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = if holder.trim().is_empty() { "another longtail process".to_string() } else { holder };
            bail!(
                "{} is in use by {}; wait for it to end (or stop it) and try again",
                self.path.display(),
                holder.trim()
            );
        }
        file.set_len(0).with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(file, "pid {} ({purpose}, since {})", std::process::id(), crate::store::now_utc())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(RunLock { _file: file })
    }

    /// Whether a live process holds the directory's lock; `None` when it has no lock file
    /// (a run made before runs were locked), where only the age of its files can tell.
    pub fn locked(&self) -> Option<bool> {
        let file = File::open(self.file(LOCK_FILE)).ok()?;
        // SAFETY: as in `lock`; a shared lock taken here is released when `file` closes.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        Some(!free)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// What the analyses after training found for `summary`'s run: as `publish` attached them
    /// to the summary, else from the files `eval` and `select` wrote beside it.
    pub fn analyses(&self, summary: &Summary) -> Result<Analyses> {
        fn or_file<T: Clone>(attached: &Option<T>, file: impl FnOnce() -> Result<Option<T>>) -> Result<Option<T>> {
            match attached {
                Some(found) => Ok(Some(found.clone())),
                None => file(),
            }
        }
        Ok(Analyses {
            timing: or_file(&summary.early_exit_timing, || self.early_exit_timing())?,
            precise_bn: or_file(&summary.precise_bn, || self.precise_bn())?,
            weight_average: or_file(&summary.weight_average, || self.weight_average())?,
            selection: or_file(&summary.selected_on_validation, || self.validation_selection())?,
            stage_two: or_file(&summary.stage_two, || self.stage_two())?,
        })
    }

    /// `eval --timing`'s measurements, if they were taken for this run.
    pub fn early_exit_timing(&self) -> Result<Option<TimingReport>> {
        self.optional_json(TIMING_FILE)
    }

    pub fn precise_bn(&self) -> Result<Option<PreciseBnReport>> {
        self.optional_json(PRECISE_BN_FILE)
    }

    pub fn weight_average(&self) -> Result<Option<PreciseBnReport>> {
        self.optional_json(WEIGHT_AVERAGE_FILE)
    }

    pub fn validation_selection(&self) -> Result<Option<ValidationSelection>> {
        self.optional_json(SELECTION_FILE)
    }

    pub fn stage_two(&self) -> Result<Option<StageTwoReport>> {
        self.optional_json(STAGE_TWO_FILE)
    }

    fn optional_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>> {
        let path = self.file(name);
        if path.exists() {
            Ok(Some(read_json(&path)?))
        } else {
            Ok(None)
        }
    }

    pub fn append_metrics(&self, record: &EpochRecord) -> Result<()> {
        let path = self.file(METRICS_FILE);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(record)?)?;
        Ok(())
    }

    /// Every metrics line. A last line cut short (an append that a full disk or a kill
    /// interrupted: no newline at its end, and it does not parse) is left out, since no epoch it
    /// describes was checkpointed; any other line that does not parse is an error naming it.
    pub fn read_metrics(&self) -> Result<Vec<EpochRecord>> {
        Ok(self.read_metrics_and_torn_line()?.0)
    }

    fn read_metrics_and_torn_line(&self) -> Result<(Vec<EpochRecord>, Option<usize>)> {
        let path = self.file(METRICS_FILE);
        if !path.exists() {
            return Ok((Vec::new(), None));
        }
        let text =
            crate::store::read_regular_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut records = Vec::with_capacity(lines.len());
        let mut torn = None;
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(record) => records.push(record),
                Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => torn = Some(i + 1),
                Err(e) => return Err(e).with_context(|| format!("{} line {}", path.display(), i + 1)),
            }
        }
        Ok((records, torn))
    }

    /// Rewrite metrics keeping only epochs ≤ `epochs_done`, the checkpoint's (the checkpoint is
    /// the truth: lines of an epoch it does not hold, or a torn last line, go). Returns what was
    /// repaired, for the user, when anything was.
    pub fn truncate_metrics(&self, epochs_done: usize) -> Result<Option<String>> {
        let (records, torn) = self.read_metrics_and_torn_line()?;
        let total = records.len();
        let kept: Vec<EpochRecord> = records.into_iter().filter(|r| r.epoch <= epochs_done).collect();
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        atomic_write(&self.file(METRICS_FILE), text.as_bytes())?;
        let mut repairs = Vec::new();
        if let Some(line) = torn {
            repairs.push(format!("its torn last line ({line}) removed"));
        }
        if total > kept.len() {
            repairs
                .push(format!("{} line(s) of epochs after the checkpoint's {epochs_done} removed", total - kept.len()));
        }
        Ok((!repairs.is_empty())
            .then(|| format!("repaired {}: {}", self.file(METRICS_FILE).display(), repairs.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_and_print_as_the_flag_spells_them() {
        for w in [Weights::Last, Weights::Best] {
            assert_eq!(w.as_str().parse::<Weights>(), Ok(w));
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{w}\""));
        }
        let err = "newest".parse::<Weights>().unwrap_err();
        assert_eq!(err.to_string(), "--weights \"newest\": use last or best");
    }

    #[test]
    fn status_reads_the_directory_and_refuses_a_summary_that_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = RunDir::new(dir.path());
        assert!(matches!(status(dir.path()).unwrap(), RunStatus::NotStarted));
        fs::write(d.file(CONFIG_FILE), "[train]\nepochs = 200\n").unwrap();
        let state = TrainState {
            epochs_done: 44,
            checkpoint: "ckpt-0044.ot".into(),
            best: None,
            last: None,
            wall_seconds: 1.0,
            step: 0,
            partial_epoch: None,
        };
        crate::store::write_json(&d.file(STATE_FILE), &state).unwrap();
        assert!(matches!(status(dir.path()).unwrap(), RunStatus::Partial { epochs_done: 44, epochs: 200 }));
        fs::write(d.file(FAILURE_FILE), "training diverged at epoch 45\n").unwrap();
        assert!(matches!(status(dir.path()).unwrap(), RunStatus::Failed(m) if m == "training diverged at epoch 45"));
        // A torn summary is not "unfinished": it must never let a finished run be trained over.
        fs::write(d.file(SUMMARY_FILE), "{\"name\": \"x\", ").unwrap();
        let err = format!("{:#}", status(dir.path()).unwrap_err());
        assert!(err.contains(SUMMARY_FILE), "{err}");
    }

    #[test]
    fn one_writer_at_a_time_and_the_lock_goes_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let d = RunDir::new(dir.path().join("run"));
        assert_eq!(d.locked(), None, "no lock file: nothing to tell");
        let held = d.lock("train").unwrap();
        assert_eq!(d.locked(), Some(true));
        let err = d.lock("select").unwrap_err().to_string();
        assert!(err.contains("is in use by pid") && err.contains("(train, since"), "{err}");
        drop(held);
        assert_eq!(d.locked(), Some(false), "released with its holder");
        let _again = d.lock("select").unwrap();
    }
}
