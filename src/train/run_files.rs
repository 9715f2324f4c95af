//! The files a training writes into its run directory, and the order it writes them in.
//!
//! After every epoch: the metrics line, then the checkpoint (written whole, then moved into
//! place), the kept weights when asked for, then `state.json` pointing at the checkpoint, and
//! only then the previous checkpoint is deleted. Whatever moment a run is killed, `state.json`
//! names a complete checkpoint, and resuming truncates `metrics.jsonl` back to it.
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::checkpoint;
use super::fork;
use super::setup::Session;
use crate::config::Config;
use crate::run::{self, EpochScore, EpochSums, Resume, RunDir, RunLock, RunMeta, TrainState};
use crate::store;

pub fn ckpt_name(epochs_done: usize) -> String {
    format!("ckpt-{epochs_done:04}.ot")
}

/// The checkpoint a signal leaves after `step` steps of epoch `epochs_done + 1`.
pub fn mid_epoch_ckpt_name(epochs_done: usize, step: usize) -> String {
    format!("ckpt-{epochs_done:04}-{step:05}.ot")
}

/// The checkpoint a state must point at: its epoch's, or its step's within the next epoch.
fn expected_checkpoint(state: &TrainState) -> String {
    if state.step == 0 {
        ckpt_name(state.epochs_done)
    } else {
        mid_epoch_ckpt_name(state.epochs_done, state.step)
    }
}

/// Where a run stands between epochs: what `state.json` records, less the checkpoint's name.
#[derive(Debug, Clone, Default)]
pub struct SoFar {
    pub epochs_done: usize,
    pub best: Option<EpochScore>,
    pub last: Option<EpochScore>,
    pub wall_seconds: f64,
}

/// A run directory open for training: locked, with the saved state when it continues a run.
pub struct Opened {
    pub dir: RunDir,
    pub state: Option<TrainState>,
    /// Started from another run's checkpoint by this invocation (`--fork-from`).
    pub forked: bool,
    pub lock: RunLock,
}

/// How `train` was asked to use its run directory.
pub struct OutDir<'a> {
    /// `--out`.
    pub path: &'a Path,
    /// `--resume`: continue the run there.
    pub resume: bool,
    /// `--fork-from`: start it from this run's last checkpoint.
    pub fork_from: Option<&'a Path>,
}

/// Open the run directory `out` names, holding its lock (one writer per run): a new run, a
/// resumed one (`--resume`), or a fork of another run (`--fork-from`).
pub fn open(cfg: &Config, out: &OutDir, invocation: &RunMeta) -> Result<Opened> {
    // A fork is staged and moved into place whole (`fork::start` refuses a non-empty --out), so
    // it locks once it is there; every other run locks before it looks.
    match out.fork_from {
        Some(_) if out.resume => bail!(
            "--fork-from starts a new run and --resume continues one; to continue a forked run, pass --resume alone"
        ),
        Some(parent) => {
            let (dir, state) = fork::start(parent, out.path, cfg, invocation)?;
            let lock = dir.lock("train")?;
            Ok(Opened { dir, state: Some(state), forked: true, lock })
        }
        None => {
            // Checked before the lock file is made (so `--out /` writes nothing), and again under
            // the lock, where no other process can change the answer.
            let dir = RunDir::new(out.path);
            check_out_folder(&dir)?;
            let lock = dir.lock("train")?;
            check_out_folder(&dir)?;
            let state = open_run_dir(&dir, cfg, out.resume, invocation)?;
            Ok(Opened { dir, state, forked: false, lock })
        }
    }
}

/// `--out` must be a new or empty folder, or a run's own folder (which then needs `--resume`):
/// a folder of other files, or of runs, is refused before anything is written into it.
fn check_out_folder(dir: &RunDir) -> Result<()> {
    let path = &dir.path;
    if path.exists() && !path.is_dir() {
        bail!("--out {} is a file, not a folder; choose a new folder for the run", path.display());
    }
    if !path.exists() || dir.exists(run::CONFIG_FILE) || dir.exists(run::STATE_FILE) {
        return Ok(());
    }
    let entries = std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut others: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != run::LOCK_FILE)
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    let shown = others.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = if others.len() > 3 { format!(" and {} more", others.len() - 3) } else { String::new() };
    bail!(
        "--out {} is a folder with other things in it ({shown}{more}) and no run; train into a new or empty folder \
         (a folder of runs takes one sub-folder per run)",
        path.display()
    )
}

/// Prepare (or reopen) the run directory. Returns the saved state when resuming.
fn open_run_dir(dir: &RunDir, cfg: &Config, resume: bool, meta: &RunMeta) -> Result<Option<TrainState>> {
    if dir.exists(run::STATE_FILE) || dir.exists(run::CONFIG_FILE) {
        if !resume {
            bail!(
                "run directory {} already holds a run; pass --resume to continue it, or choose another --out",
                dir.path.display()
            );
        }
        // Compare resolved configs, not text: a run saved by an older longtail (before some
        // keys existed) resumes as long as every setting, defaults included, is the same.
        let saved_path = dir.file(run::CONFIG_FILE);
        let saved = std::fs::read_to_string(&saved_path).unwrap_or_default();
        // The device is where the run executes, not what it computes: a run started on a GPU
        // may finish on a CPU (`--device`), so it is left out of the comparison.
        let same = crate::config::resolve(&saved, &saved_path.display().to_string(), &[])
            .is_ok_and(|c| Config { device: cfg.device.clone(), ..c } == *cfg);
        if !same {
            bail!(
                "the config differs from the one {} was started with ({}); start a new run instead of resuming",
                dir.path.display(),
                dir.file(run::CONFIG_FILE).display()
            );
        }
        if !dir.exists(run::STATE_FILE) {
            if let Some(ckpt) = checkpoints_in(dir)?.first() {
                bail!(
                    "{} has checkpoints ({ckpt}, …) but no {}: it cannot tell which one is whole, so it will not \
                     start over on top of them. Restore {} from a copy, or move the run aside and start anew",
                    dir.path.display(),
                    run::STATE_FILE,
                    run::STATE_FILE
                );
            }
            return Ok(None);
        }
        let state: TrainState = store::read_json(&dir.file(run::STATE_FILE))?;
        check_state(dir, &state, cfg.train.epochs)?;
        return Ok(Some(state));
    }
    std::fs::create_dir_all(&dir.path).with_context(|| format!("cannot create {}", dir.path.display()))?;
    store::atomic_write(&dir.file(run::CONFIG_FILE), cfg.to_toml().as_bytes())?;
    store::write_json(&dir.file(run::META_FILE), meta)?;
    Ok(None)
}

/// The checkpoint files (`ckpt-NNNN.ot`) in `dir`, sorted.
fn checkpoints_in(dir: &RunDir) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(&dir.path).with_context(|| format!("cannot read {}", dir.path.display()))?;
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-") && n.ends_with(".ot"))
        .collect();
    found.sort();
    Ok(found)
}

/// `state.json` must name this run's own checkpoint of the epoch it records, within the run.
fn check_state(dir: &RunDir, state: &TrainState, epochs: usize) -> Result<()> {
    let file = dir.file(run::STATE_FILE);
    if state.epochs_done > epochs {
        bail!(
            "{} records {} epochs done, but the run has {epochs}: it is not this run's state",
            file.display(),
            state.epochs_done
        );
    }
    if state.step > 0 && (state.epochs_done >= epochs || state.partial_epoch.is_none()) {
        bail!(
            "{} records step {} of epoch {} without that epoch's sums, or past the run's {epochs} epochs: it is \
             not a state this trainer writes",
            file.display(),
            state.step,
            state.epochs_done + 1
        );
    }
    let expected = expected_checkpoint(state);
    if state.checkpoint != expected {
        bail!(
            "{} points at {:?}, not at the checkpoint of its epoch {} ({expected}); a state file names only \
             the run's own rolling checkpoint",
            file.display(),
            state.checkpoint,
            state.epochs_done
        );
    }
    if !dir.exists(&expected) {
        bail!("{} points at {expected}, which is not in {}", file.display(), dir.path.display());
    }
    Ok(())
}

/// Where an epoch starts: its first step (0, or where a mid-epoch checkpoint stopped) and the
/// sums of the steps before it.
#[derive(Default)]
pub struct EpochStart {
    pub step: usize,
    pub sums: EpochSums,
}

/// Where a run continues from: what `state.json` recorded, loaded into the session.
pub struct Restored {
    pub so_far: SoFar,
    /// The resume to record in meta.json with this invocation's first checkpoint (none for a
    /// new run, or a fork, whose parent is recorded instead).
    pub pending_resume: Option<Resume>,
    /// Where the first epoch of this invocation starts (mid-epoch after a signal).
    pub start: EpochStart,
}

/// Load the saved state into the session and cut `metrics.jsonl` back to its checkpoint.
/// `steps` is the run's steps per epoch, which a mid-epoch state must lie within.
pub fn restore(
    opened: &Opened,
    session: &mut Session,
    meta: &RunMeta,
    invocation: &RunMeta,
    steps: usize,
) -> Result<Restored> {
    let Some(st) = &opened.state else {
        return Ok(Restored { so_far: SoFar::default(), pending_resume: None, start: EpochStart::default() });
    };
    let dir = &opened.dir;
    if st.step >= steps {
        bail!(
            "{} records step {} of an epoch of {steps} steps: it is not this run's state",
            dir.file(run::STATE_FILE).display(),
            st.step
        );
    }
    let momentum = checkpoint::load(&dir.file(&st.checkpoint), &mut session.vs)?;
    if momentum.is_empty() && (st.epochs_done > 0 || st.step > 0) {
        bail!(
            "{} holds weights but no momentum buffers: it is a weights file, not a training checkpoint, so the \
             run cannot continue exactly from it",
            dir.file(&st.checkpoint).display()
        );
    }
    session.opt.load_buffers(momentum).map_err(anyhow::Error::msg)?;
    if let Some(repaired) = dir.truncate_metrics(st.epochs_done)? {
        eprintln!("{repaired}");
    }
    let so_far = SoFar {
        epochs_done: st.epochs_done,
        best: st.best.clone(),
        last: st.last.clone(),
        wall_seconds: st.wall_seconds,
    };
    let epochs_done = st.epochs_done;
    let start = EpochStart { step: st.step, sums: st.partial_epoch.clone().unwrap_or_default() };
    if let Some(f) = meta.forked_from.as_ref().filter(|_| opened.forked) {
        let changed = if f.changed.is_empty() { "nothing".to_string() } else { f.changed.join("; ") };
        eprintln!("forked {} from {} after epoch {epochs_done}; changed: {changed}", dir.path.display(), f.parent);
        return Ok(Restored { so_far, pending_resume: None, start });
    }
    // Recorded in meta.json with this invocation's first checkpoint, so an attempt that stops
    // before writing one leaves no trace.
    let within = if st.step > 0 { format!(", step {} of epoch {}", st.step, epochs_done + 1) } else { String::new() };
    eprintln!("resuming {} after epoch {epochs_done}{within}", dir.path.display());
    Ok(Restored { so_far, pending_resume: Some(Resume::of(invocation, epochs_done, st.step)), start })
}

/// Add this invocation's resume record to meta.json, once.
pub fn record_resume(dir: &RunDir, meta: &mut RunMeta, pending: &mut Option<Resume>) -> Result<()> {
    if let Some(r) = pending.take() {
        meta.resumes.push(r);
        store::write_json(&dir.file(run::META_FILE), meta)?;
    }
    Ok(())
}

/// Write the checkpoint of the epoch just finished (and its kept weights from
/// `keep_weights_from` on), point `state.json` at it, then delete the previous checkpoint.
pub fn save_epoch(dir: &RunDir, session: &Session, so_far: &SoFar, keep_weights_from: Option<usize>) -> Result<()> {
    let epochs_done = so_far.epochs_done;
    let ckpt = ckpt_name(epochs_done);
    checkpoint::save(&dir.file(&ckpt), &session.vs, &session.opt.buffers())?;
    if keep_weights_from.is_some_and(|n| epochs_done >= n) {
        let kept = dir.file(&run::kept_weights_file(epochs_done));
        let folder = dir.file(run::KEPT_WEIGHTS_DIR);
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        checkpoint::save_weights(&kept, &session.vs)?;
    }
    write_state(dir, so_far, ckpt, 0, None)
}

/// A signal stopped epoch `so_far.epochs_done + 1` after `step` steps: checkpoint there, with
/// the epoch's sums so far in `state.json`, so resuming continues that epoch bit for bit.
pub fn save_mid_epoch(dir: &RunDir, session: &Session, so_far: &SoFar, step: usize, sums: &EpochSums) -> Result<()> {
    let ckpt = mid_epoch_ckpt_name(so_far.epochs_done, step);
    checkpoint::save(&dir.file(&ckpt), &session.vs, &session.opt.buffers())?;
    write_state(dir, so_far, ckpt, step, Some(sums.clone()))
}

/// Point `state.json` at `ckpt`, then delete every other rolling checkpoint (the one it
/// replaces, and a mid-epoch one the epoch has now passed).
fn write_state(dir: &RunDir, so_far: &SoFar, ckpt: String, step: usize, partial: Option<EpochSums>) -> Result<()> {
    let state = TrainState {
        epochs_done: so_far.epochs_done,
        checkpoint: ckpt.clone(),
        best: so_far.best.clone(),
        last: so_far.last.clone(),
        wall_seconds: so_far.wall_seconds,
        step,
        partial_epoch: partial,
    };
    store::write_json(&dir.file(run::STATE_FILE), &state)?;
    for old in checkpoints_in(dir)?.into_iter().filter(|name| *name != ckpt) {
        store::remove_with_checksum(&dir.file(&old));
    }
    Ok(())
}

/// The divergence guard stopped a step: the message, also left in the run directory (the
/// failure file) for `reproduce` and for people.
pub fn diverged(dir: &RunDir, epoch: usize, step: usize, what: &str) -> anyhow::Error {
    // The last good checkpoint is whatever state.json names; a run that diverges in its first
    // epoch has none yet.
    let saved = store::read_json::<TrainState>(&dir.file(run::STATE_FILE)).ok();
    let intact = match saved {
        Some(st) => format!("the last good checkpoint ({}) is intact", dir.file(&st.checkpoint).display()),
        None => "no checkpoint was written yet (the run starts over with --resume)".to_string(),
    };
    let msg = format!(
        "training diverged at epoch {}, step {}: {what}; the run stopped before this step changed any weight, and \
         {intact}",
        epoch + 1,
        step + 1,
    );
    let _ = store::atomic_write(&dir.file(run::FAILURE_FILE), format!("{msg}\n").as_bytes());
    anyhow::anyhow!(msg)
}
