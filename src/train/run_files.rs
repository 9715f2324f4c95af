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
use crate::run::{self, EpochScore, Resume, RunDir, RunLock, RunMeta, TrainState};
use crate::store;

pub fn ckpt_name(epochs_done: usize) -> String {
    format!("ckpt-{epochs_done:04}.ot")
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
    let expected = ckpt_name(state.epochs_done);
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

/// Load the saved state into the session and cut `metrics.jsonl` back to its checkpoint.
/// Returns where the run stands, and the resume to record in meta.json with this invocation's
/// first checkpoint (none for a fork, whose parent is recorded instead).
pub fn restore(
    opened: &Opened,
    session: &mut Session,
    meta: &RunMeta,
    invocation: &RunMeta,
) -> Result<(SoFar, Option<Resume>)> {
    let Some(st) = &opened.state else { return Ok((SoFar::default(), None)) };
    let dir = &opened.dir;
    let momentum = checkpoint::load(&dir.file(&st.checkpoint), &mut session.vs)?;
    if momentum.is_empty() && st.epochs_done > 0 {
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
    if let Some(f) = meta.forked_from.as_ref().filter(|_| opened.forked) {
        let changed = if f.changed.is_empty() { "nothing".to_string() } else { f.changed.join("; ") };
        eprintln!("forked {} from {} after epoch {epochs_done}; changed: {changed}", dir.path.display(), f.parent);
        return Ok((so_far, None));
    }
    // Recorded in meta.json with this invocation's first checkpoint, so an attempt that stops
    // before finishing an epoch leaves no trace.
    eprintln!("resuming {} after epoch {epochs_done}", dir.path.display());
    Ok((so_far, Some(Resume::of(invocation, epochs_done))))
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
    let state = TrainState {
        epochs_done,
        checkpoint: ckpt,
        best: so_far.best.clone(),
        last: so_far.last.clone(),
        wall_seconds: so_far.wall_seconds,
    };
    store::write_json(&dir.file(run::STATE_FILE), &state)
}

/// Delete the checkpoint the one of `epochs_done` replaces (after `state.json` names the new one).
pub fn remove_previous_checkpoint(dir: &RunDir, epochs_done: usize) {
    if epochs_done > 1 {
        let _ = std::fs::remove_file(dir.file(&ckpt_name(epochs_done - 1)));
    }
}

/// The divergence guard stopped a step: the message, also left in the run directory (the
/// failure file) for `reproduce` and for people.
pub fn diverged(dir: &RunDir, epoch: usize, step: usize, what: &str, epochs_done: usize) -> anyhow::Error {
    let msg = format!(
        "training diverged at epoch {}, step {}: {what}; the run stopped before this step \
         changed any weight, and the last good checkpoint ({}) is intact",
        epoch + 1,
        step + 1,
        dir.file(&ckpt_name(epochs_done)).display()
    );
    let _ = store::atomic_write(&dir.file(run::FAILURE_FILE), format!("{msg}\n").as_bytes());
    anyhow::anyhow!(msg)
}
