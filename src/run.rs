//! A run directory: the resolved config, metadata, metrics per epoch, checkpoints and the final
//! summary. Files that matter are written atomically (temp file in the same folder, fsync,
//! rename), so a killed run never leaves a half-written checkpoint or summary behind.
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::eval::early_exit::{EarlyExit, TimingReport};
use crate::eval::metrics::{Accuracy, GroupAcc, GroupExitFractions};
use crate::eval::precise_bn::PreciseBnReport;
use crate::eval::select::ValidationSelection;
use crate::model::precision::Precision;
use crate::train::fork::Fork;

pub const CONFIG_FILE: &str = "config.toml";
pub const META_FILE: &str = "meta.json";
pub const STATE_FILE: &str = "state.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const SUMMARY_FILE: &str = "summary.json";
pub const BEST_WEIGHTS: &str = "best.ot";
/// Written when the divergence guard stops a run: the message, for `reproduce` and for people.
/// `eval --timing`'s measurements (`TimingReport`), attached to the result by `publish`.
pub const TIMING_FILE: &str = "early_exit_timing.json";
/// `eval --precise-bn`'s result (`eval::precise_bn::PreciseBnReport`).
pub const PRECISE_BN_FILE: &str = "precise_bn.json";
/// `eval --average-from`'s result: a `PreciseBnReport` of the averaged weights.
pub const WEIGHT_AVERAGE_FILE: &str = "weight_average.json";
/// `select`'s result: the epoch chosen on held-out validation images (`eval::select`).
pub const SELECTION_FILE: &str = "validation_selection.json";
pub const FAILURE_FILE: &str = "failure.txt";
/// Where `train --keep-weights-from N` keeps each epoch's weights (`eval --average-from`).
pub const KEPT_WEIGHTS_DIR: &str = "weights";

/// The kept weights of `epoch` inside a run directory: `weights/epoch-EEEE.ot`.
pub fn kept_weights_file(epoch: usize) -> String {
    format!("{KEPT_WEIGHTS_DIR}/epoch-{epoch:04}.ot")
}

/// Write `bytes` to `path` atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}

/// A sibling temp path for atomic writes of `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    atomic_write(path, text.as_bytes())
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid {}", path.display(), std::any::type_name::<T>()))
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
    pub at: String,
    pub command: String,
    pub commit: String,
    pub device: String,
    pub machine: String,
}

impl Resume {
    /// The record of `invocation` (this process's own [`RunMeta`]) continuing a run after
    /// `after_epoch`.
    pub fn of(invocation: &RunMeta, after_epoch: usize) -> Self {
        Resume {
            after_epoch,
            at: invocation.started_at.clone(),
            command: invocation.command.clone(),
            commit: invocation.commit.clone(),
            device: invocation.device.clone(),
            machine: invocation.machine.clone(),
        }
    }
}

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

/// The run's final result; `longtail publish` copies it into `results/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub config: Option<String>,
    pub command: String,
    pub commit: String,
    pub seed: u64,
    pub dataset: String,
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
}

impl Summary {
    /// The epoch of the run's `last` or `best` weights, as `eval --weights` names them.
    pub fn epoch_of(&self, weights: &str) -> Option<usize> {
        match weights {
            "last" => Some(self.last.epoch),
            "best" => Some(self.best.epoch),
            _ => None,
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
        crate::eval::metrics::parts_alone(
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
    pub fn new(rule: String, train_counts: Vec<usize>, assignment: &[usize]) -> Self {
        let members = |g| assignment.iter().enumerate().filter(|(_, &a)| a == g).map(|(c, _)| c).collect();
        GroupsInfo { rule, many: members(0), medium: members(1), few: members(2), train_counts }
    }
}

/// A run directory on disk.
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
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

    /// Metrics lines for epochs ≤ `up_to` (a resumed run drops lines from a lost partial epoch).
    pub fn read_metrics(&self) -> Result<Vec<EpochRecord>> {
        let path = self.file(METRICS_FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1)))
            .collect()
    }

    /// Rewrite metrics keeping only epochs ≤ `epochs_done`.
    pub fn truncate_metrics(&self, epochs_done: usize) -> Result<()> {
        let kept: Vec<EpochRecord> = self.read_metrics()?.into_iter().filter(|r| r.epoch <= epochs_done).collect();
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        atomic_write(&self.file(METRICS_FILE), text.as_bytes())
    }
}

/// When, how and where a number was measured after training (`eval --timing`,
/// `eval --precise-bn`): the fields every such file carries, flattened into its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub measured_at: String,
    /// The command line that measured it, as typed.
    pub command: String,
    /// The commit of the binary (see [`git_commit`]).
    pub commit: String,
    pub device: String,
}

impl Provenance {
    /// This process, now, on `device`.
    pub fn now(device: tch::Device) -> Self {
        Provenance {
            measured_at: now_utc(),
            command: shell_command(),
            commit: git_commit(),
            device: format!("{device:?}"),
        }
    }
}

/// This process's command line, quoted where a shell would need it, for citing a result.
pub fn shell_command() -> String {
    std::env::args()
        .map(|a| if a.contains(char::is_whitespace) || a.is_empty() { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commit this binary was built from (build.rs: `git rev-parse HEAD`, with `-dirty` when
/// tracked sources differed from it), not the working directory's: a copied binary run later,
/// or from another checkout, still names the code that computed the run.
pub fn git_commit() -> String {
    option_env!("LONGTAIL_BUILD_COMMIT").unwrap_or("unknown").to_string()
}

/// CPU model and thread count (or the GPU), for citing where a number came from.
pub fn machine_description(device: tch::Device) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let host = match device {
        tch::Device::Cuda(i) => format!("CUDA device {i}; host "),
        _ => String::new(),
    };
    format!("{host}{cpu}, {cores} cores, {} torch threads", tch::get_num_threads())
}

pub fn engine_description() -> String {
    format!("tch 0.24.0, libtorch {}", option_env!("LONGTAIL_LIBTORCH_VERSION").unwrap_or("unknown"))
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant), valid for the Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        atomic_write(&p, b"old").unwrap();
        atomic_write(&p, b"new contents").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn timestamp_shape() {
        let t = now_utc();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn the_build_commit_is_the_checkout_head() {
        // cargo rebuilds after every commit (build.rs watches .git/logs/HEAD), so a test binary
        // always carries the HEAD it was built at; a copied or stale binary would not match.
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        match head {
            Some(h) => assert!(git_commit() == h || git_commit() == format!("{h}-dirty"), "{} vs {h}", git_commit()),
            None => assert_eq!(git_commit(), "unknown"),
        }
    }
}
