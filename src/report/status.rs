//! `longtail status`: where each run stands, for runs left training in the background (`nohup`)
//! or stopped by the end of a session: epochs done of how many, the newest and best test
//! accuracy, the recent pace and what is left, and whether it finished, failed, is still being
//! written or stopped (and so needs `--resume`).
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::config;
use crate::run::{self, EpochRecord, RunDir, RunStatus, TrainState};
use crate::store;

/// Epochs the pace is measured over: recent enough to follow a change of load on the machine.
const PACE_EPOCHS: usize = 5;

/// What a run directory says about itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Finished,
    /// The divergence guard stopped it; the message names the last good checkpoint.
    Failed(String),
    /// Its state was written within a few epochs' time: a process is most likely training it.
    Running,
    /// Nothing written for longer than a few epochs take: continue it with `--resume`.
    Stopped,
    /// A run directory with a config but no finished epoch yet.
    Starting,
}

/// One run's progress as `longtail status` shows it: its [`run::RunStatus`], with a process's
/// liveness guessed from how long the state has been silent, and the pace.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub dir: PathBuf,
    pub phase: Phase,
    pub epochs_done: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Newest test accuracy and the best so far, each with its epoch.
    pub last: Option<(usize, f64)>,
    pub best: Option<(usize, f64)>,
    /// Mean seconds per epoch over the newest epochs, and the time the rest would take at it.
    pub seconds_per_epoch: Option<f64>,
    pub remaining: Option<Duration>,
    /// Time since the run last wrote its state.
    pub idle: Option<Duration>,
}

/// The progress of one run directory.
pub fn progress(dir: &Path, now: SystemTime) -> Result<Progress> {
    let rd = RunDir::new(dir);
    let cfg = config::load(&rd.file(run::CONFIG_FILE), &[])?;
    let state: Option<TrainState> =
        if rd.exists(run::STATE_FILE) { Some(store::read_json(&rd.file(run::STATE_FILE))?) } else { None };
    let records = rd.read_metrics()?;
    let idle = std::fs::metadata(rd.file(run::STATE_FILE))
        .or_else(|_| std::fs::metadata(rd.file(run::CONFIG_FILE)))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| now.duration_since(t).ok());
    let seconds_per_epoch = pace(&records);
    let epochs_done = state.as_ref().map_or(0, |s| s.epochs_done);
    let phase = match run::status(dir)? {
        RunStatus::Finished(_) => Phase::Finished,
        RunStatus::Failed(msg) => Phase::Failed(msg),
        RunStatus::NotStarted => Phase::Starting,
        RunStatus::Partial { epochs_done: 0, .. } => Phase::Starting,
        // The lock says it for runs that take one; older runs only have the age of their state.
        RunStatus::Partial { .. } => match rd.locked() {
            Some(true) => Phase::Running,
            Some(false) => Phase::Stopped,
            None => classify(idle, seconds_per_epoch),
        },
    };
    let left = cfg.train.epochs.saturating_sub(epochs_done);
    let remaining = match (&phase, seconds_per_epoch) {
        (Phase::Running | Phase::Stopped, Some(s)) => Some(Duration::from_secs_f64(s * left as f64)),
        _ => None,
    };
    let score = |e: Option<&run::EpochScore>| e.map(|s| (s.epoch, s.overall));
    Ok(Progress {
        dir: dir.to_path_buf(),
        phase,
        epochs_done,
        epochs: cfg.train.epochs,
        seed: cfg.seed,
        last: score(state.as_ref().and_then(|s| s.last.as_ref())),
        best: score(state.as_ref().and_then(|s| s.best.as_ref())),
        seconds_per_epoch,
        remaining,
        idle,
    })
}

/// Mean seconds of the newest [`PACE_EPOCHS`] epochs.
fn pace(records: &[EpochRecord]) -> Option<f64> {
    let recent = &records[records.len().saturating_sub(PACE_EPOCHS)..];
    (!recent.is_empty()).then(|| recent.iter().map(|r| r.seconds).sum::<f64>() / recent.len() as f64)
}

/// Running if the state was written within three epochs' time (and at least two minutes: the
/// first epochs and evaluations are slower); otherwise stopped.
fn classify(idle: Option<Duration>, seconds_per_epoch: Option<f64>) -> Phase {
    let patience = seconds_per_epoch.map_or(120.0, |s| (3.0 * s).max(120.0));
    match idle {
        Some(idle) if idle.as_secs_f64() > patience => Phase::Stopped,
        _ => Phase::Running,
    }
}

/// The run directories among `paths`: each path that is a run, else its subfolders that are.
pub fn find_runs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let is_run = |p: &Path| p.join(run::CONFIG_FILE).is_file() && p.join(run::META_FILE).is_file();
    let mut out = Vec::new();
    for p in paths {
        if is_run(p) {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut runs: Vec<PathBuf> = entries.into_iter().map(|e| e.path()).filter(|c| is_run(c)).collect();
        if runs.is_empty() {
            anyhow::bail!("{} is not a run directory and holds none", p.display());
        }
        runs.sort();
        out.extend(runs);
    }
    Ok(out)
}

fn hours_minutes(d: Duration) -> String {
    let m = (d.as_secs() + 30) / 60;
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

/// One markdown table: what each run is doing and how far it is, then how to continue the
/// stopped ones and why the failed ones failed.
pub fn table(rows: &[Progress]) -> String {
    let mut s = String::from("| run | seed | state | epoch | last test | best test | s/epoch | left |\n|---|---:|---|---:|---:|---:|---:|---:|\n");
    let mut notes = Vec::new();
    for r in rows {
        let state = match &r.phase {
            Phase::Finished => "finished".to_string(),
            Phase::Failed(_) => "failed".to_string(),
            Phase::Running => "running".to_string(),
            Phase::Starting => "starting".to_string(),
            Phase::Stopped => format!("stopped {} ago", r.idle.map_or("?".into(), hours_minutes)),
        };
        let score = |v: Option<(usize, f64)>| v.map_or("—".to_string(), |(e, a)| format!("{a:.2} @{e}"));
        s.push_str(&format!(
            "| {} | {} | {state} | {}/{} | {} | {} | {} | {} |\n",
            r.dir.display(),
            r.seed,
            r.epochs_done,
            r.epochs,
            score(r.last),
            score(r.best),
            r.seconds_per_epoch.map_or("—".to_string(), |x| format!("{x:.1}")),
            r.remaining.map_or("—".to_string(), hours_minutes),
        ));
        match &r.phase {
            Phase::Stopped => {
                notes.push(format!("{}: continue with the command in its meta.json plus --resume", r.dir.display()))
            }
            Phase::Failed(msg) => notes.push(format!("{}: {msg}", r.dir.display())),
            _ => {}
        }
    }
    for n in notes {
        s.push_str(&format!("\n{n}"));
    }
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, seconds: f64) -> EpochRecord {
        serde_json::from_value(serde_json::json!({
            "epoch": epoch, "lr": 0.1, "train_loss": 1.0, "train_acc": 50.0,
            "images_per_second": 400.0, "seconds": seconds, "test": null
        }))
        .unwrap()
    }

    #[test]
    fn the_pace_is_the_mean_of_the_newest_five_epochs() {
        assert_eq!(pace(&[]), None);
        let rs: Vec<EpochRecord> =
            [100.0, 30.0, 30.0, 32.0, 34.0, 34.0].iter().enumerate().map(|(i, &s)| record(i + 1, s)).collect();
        assert_eq!(pace(&rs), Some(32.0));
        assert_eq!(pace(&rs[..2]), Some(65.0));
    }

    #[test]
    fn a_run_is_stopped_once_it_is_silent_for_three_epochs_and_two_minutes() {
        let secs = Duration::from_secs;
        assert_eq!(classify(Some(secs(100)), Some(30.0)), Phase::Running);
        assert_eq!(classify(Some(secs(121)), Some(30.0)), Phase::Stopped);
        assert_eq!(classify(Some(secs(170)), Some(60.0)), Phase::Running);
        assert_eq!(classify(Some(secs(181)), Some(60.0)), Phase::Stopped, "3 × 60 s");
        assert_eq!(classify(None, None), Phase::Running);
    }

    #[test]
    fn the_table_says_what_is_left_and_how_to_continue() {
        let r = Progress {
            dir: PathBuf::from("runs/a"),
            phase: Phase::Stopped,
            epochs_done: 12,
            epochs: 200,
            seed: 1,
            last: Some((10, 38.36)),
            best: Some((10, 38.36)),
            seconds_per_epoch: Some(33.5),
            remaining: Some(Duration::from_secs_f64(33.5 * 188.0)),
            idle: Some(Duration::from_secs(3 * 3600 + 5 * 60)),
        };
        let t = table(&[
            r.clone(),
            Progress { dir: "runs/b".into(), phase: Phase::Finished, epochs_done: 200, remaining: None, ..r },
        ]);
        assert!(
            t.contains("| runs/a | 1 | stopped 3h05m ago | 12/200 | 38.36 @10 | 38.36 @10 | 33.5 | 1h45m |"),
            "{t}"
        );
        assert!(t.contains("| runs/b | 1 | finished | 200/200 |"), "{t}");
        assert!(t.ends_with("runs/a: continue with the command in its meta.json plus --resume\n"), "{t}");
    }
}
