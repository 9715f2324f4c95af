//! The training loop: epochs of SGD steps, evaluation on the cadence of the config, a checkpoint
//! after every epoch, `--resume`, and a guard that stops cleanly on a non-finite loss. The pieces
//! live beside it: what a run starts from (`setup`), one epoch's steps (`epoch`), the run
//! directory's files (`run_files`), what is printed (`progress`), the end of a run (`summary`).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use tch::Device;

use super::epoch::{train_epoch, EpochEnd, EpochInputs};
use super::graphed::{self, GraphedStep};
use super::memory::guarded;
use super::progress::{epoch_line, EpochClock};
use super::run_files;
use super::setup::{build, load_data, resolve_device};
use super::summary::{final_scores, summary};
use super::tensorboard::EventWriter;
use crate::config::Config;
use crate::data::loader::batches_per_epoch;
use crate::loss::Criterion;
use crate::model::precision;
use crate::run::{self, EpochScore, GroupsInfo, RunDir, RunMeta, Summary};
use crate::score::predict::{score, TestSet};
use crate::store;

/// How to run a training, beyond the config itself.
pub struct TrainOptions {
    pub run_dir: PathBuf,
    pub resume: bool,
    pub data_dir: Option<PathBuf>,
    pub config_path: Option<String>,
    pub command: String,
    /// Print one line per epoch instead of drawing progress bars.
    pub plain: bool,
    /// Stop (cleanly, resumable) after this many epochs in this invocation.
    pub stop_after: Option<usize>,
    /// libtorch threads for this invocation (wins over `train.threads`; not part of the config,
    /// so a run can resume with a different thread count).
    pub threads: Option<usize>,
    /// Replay full training batches from a CUDA graph (src/train/graphed.rs). A run-time choice
    /// like the device: the captured step computes what the eager step computes.
    pub cuda_graphs: bool,
    /// Start a new run from this run's last checkpoint (`train --fork-from`, src/train/fork.rs).
    pub fork_from: Option<PathBuf>,
    /// From this epoch on, also keep each epoch's weights (`run::kept_weights_file`), which the
    /// rolling checkpoint deletes, for `eval --average-from`. It changes no number of the run,
    /// so it is an invocation option like `threads`, not a config key.
    pub keep_weights_from: Option<usize>,
    /// Write TensorBoard event files into `<run>/tensorboard/` (src/train/tensorboard.rs).
    pub tensorboard: bool,
}

/// How a call to [`train`] ended.
pub enum Outcome {
    Finished(Box<Summary>),
    /// `stop_after` epochs ran; the run can be resumed.
    Paused {
        epochs_done: usize,
    },
    /// A signal asked for a stop (`crate::interrupt`): a checkpoint was written after `step`
    /// steps of epoch `epochs_done + 1` (0: at the end of epoch `epochs_done`), from which
    /// `--resume` continues exactly.
    Interrupted {
        signal: i32,
        epochs_done: usize,
        step: usize,
    },
}

/// Train (or resume) a run to completion and write its summary.
pub fn train(cfg: &Config, opts: &TrainOptions) -> Result<Outcome> {
    crate::train::memory::keep_freed_memory();
    let device = device_for(cfg, opts)?;
    let invocation = invocation(cfg, opts, device);
    // The data is read before the run directory is made: a wrong --data leaves no directory
    // behind that the same command would then refuse as "already holds a run".
    let data = load_data(cfg, opts.data_dir.as_deref())?;
    let out = run_files::OutDir { path: &opts.run_dir, resume: opts.resume, fork_from: opts.fork_from.as_deref() };
    let opened = run_files::open(cfg, &out, &invocation)?;
    let dir = &opened.dir;
    if let Some(summary) = finished(dir)? {
        return Ok(Outcome::Finished(Box::new(summary)));
    }
    let mut meta: RunMeta = store::read_json(&dir.file(run::META_FILE))?;
    // A divergence message describes the attempt that stopped; this attempt starts clean.
    let _ = std::fs::remove_file(dir.file(run::FAILURE_FILE));

    let num_classes = data.train.num_classes;
    let rule = cfg.group_rule();
    let groups = rule.assign(&data.train_counts);
    let test = TestSet::new(&data.test, device, cfg.train.channels_last);
    let train_set = Arc::new(data.train);

    let mut s = guarded("building the network", || build(cfg, device, num_classes, train_set.shape))?;
    let criterion = Criterion::new(&cfg.loss, &s.net, &data.train_counts, device)?;
    let steps = steps_per_epoch(cfg, train_set.len())?;
    let restored = run_files::restore(&opened, &mut s, &meta, &invocation, steps)?;
    let (mut so_far, mut pending_resume, mut start) = (restored.so_far, restored.pending_resume, restored.start);
    let t = &cfg.train;
    let mut graphed = if opts.cuda_graphs {
        Some(GraphedStep::new(device, t.batch_size, train_set.shape, t.channels_last)?)
    } else {
        None
    };
    announce(cfg, train_set.len(), &data.train_counts, steps, device);
    let inputs = EpochInputs {
        cfg,
        dir,
        train_set: &train_set,
        criterion: &criterion,
        device,
        steps,
        num_classes,
        plain: opts.plain,
    };
    let schedule = t.schedule();
    let mut last_eval = None;
    let mut clock = EpochClock::default();
    let first_epoch = so_far.epochs_done;
    let mut events = if opts.tensorboard {
        // Global steps count training steps from the run's start; a resume goes on from its checkpoint.
        let done = (first_epoch * steps + start.step) as i64;
        Some(EventWriter::create(&opts.run_dir, (done > 0).then_some(done + 1))?)
    } else {
        None
    };
    for epoch in first_epoch..t.epochs {
        if opts.stop_after.is_some_and(|n| epoch - first_epoch >= n) {
            eprintln!("stopping after epoch {} as asked; continue with --resume", so_far.epochs_done);
            return Ok(Outcome::Paused { epochs_done: so_far.epochs_done });
        }
        if let Some(signal) = crate::interrupt::requested() {
            // Between epochs: the checkpoint of the last one is the place to continue from.
            return Ok(Outcome::Interrupted { signal, epochs_done: so_far.epochs_done, step: 0 });
        }
        let started = Instant::now();
        let lr = schedule.lr(epoch);
        let prefix = format!("epoch {}/{} (run ETA {})", epoch + 1, t.epochs, clock.eta(t.epochs - epoch));
        let earlier_segments = start.sums.train_seconds;
        let start_here = std::mem::take(&mut start);
        let totals = match train_epoch(
            &inputs,
            &mut s,
            graphed.as_mut(),
            events.as_mut(),
            epoch,
            lr,
            prefix,
            &so_far,
            start_here,
        )? {
            EpochEnd::Done(sums) => sums,
            EpochEnd::Interrupted { sums, step, signal } => {
                so_far.wall_seconds += started.elapsed().as_secs_f64();
                run_files::save_mid_epoch(dir, &s, &so_far, step, &sums)?;
                run_files::record_resume(dir, &mut meta, &mut pending_resume)?;
                return Ok(Outcome::Interrupted { signal, epochs_done: so_far.epochs_done, step });
            }
        };
        let (mut test_acc, mut test_branches) = (None, None);
        if cfg.eval_at(epoch) {
            let scored = guarded("evaluating", || Ok(score(&s.net, &test, cfg.eval.batch_size, num_classes, &groups)))?;
            let epoch_score = EpochScore::new(epoch + 1, &scored.fused.accuracy);
            if so_far.best.as_ref().is_none_or(|b| epoch_score.overall > b.overall) {
                so_far.best = Some(epoch_score.clone());
                super::checkpoint::save_weights(&dir.file(run::BEST_WEIGHTS), &s.vs)?;
            }
            so_far.last = Some(epoch_score);
            (test_acc, test_branches) = (Some(scored.fused.accuracy.clone()), scored.branches.clone());
            last_eval = Some((scored.fused, scored.branches));
        }
        let seconds_here = started.elapsed().as_secs_f64();
        so_far.wall_seconds += seconds_here;
        // An epoch a signal split: its time is that of both segments.
        let seconds = earlier_segments + seconds_here;
        so_far.epochs_done = epoch + 1;
        let record = totals.record(so_far.epochs_done, lr, seconds, &groups, test_acc, test_branches);
        dir.append_metrics(&record)?;
        if let Some(ev) = events.as_mut() {
            ev.epoch((so_far.epochs_done * steps) as i64, &record)?;
        }
        run_files::save_epoch(dir, &s, &so_far, opts.keep_weights_from)?;
        run_files::record_resume(dir, &mut meta, &mut pending_resume)?;
        clock.record(seconds);
        eprintln!("{}", epoch_line(&record, t.epochs, so_far.best.as_ref(), &clock.eta(t.epochs - so_far.epochs_done)));
    }

    let scores = final_scores(cfg, &s.net, &test, &groups, num_classes, last_eval);
    // A resume that found every epoch done and only wrote the summary is part of the record too.
    run_files::record_resume(dir, &mut meta, &mut pending_resume)?;
    let groups = GroupsInfo::new(rule.describe(), data.train_counts.clone(), &groups);
    let summary = summary(cfg, meta, so_far, scores, groups);
    store::write_json_checked(&dir.file(run::SUMMARY_FILE), &summary)?;
    Ok(Outcome::Finished(Box::new(summary)))
}

/// The device the run trains on, with libtorch's threads set: a device, precision or CUDA-graph
/// request that cannot be met is refused before the run directory is touched, so the same command
/// without it (or with `train.precision = "fp32"`) works.
fn device_for(cfg: &Config, opts: &TrainOptions) -> Result<Device> {
    if let Some(t) = opts.threads.filter(|&t| t > 0).or((cfg.train.threads > 0).then_some(cfg.train.threads)) {
        tch::set_num_threads(t as i32);
    }
    let device = resolve_device(&cfg.device)?;
    precision::check(cfg.train.precision, device)?;
    if opts.cuda_graphs {
        if let Some(why) = graphed::unsupported_reason(cfg, device) {
            bail!("--cuda-graphs: {why}");
        }
    }
    Ok(device)
}

/// The summary of a run that already finished: training it again is a no-op that says so.
fn finished(dir: &RunDir) -> Result<Option<Summary>> {
    if !dir.exists(run::SUMMARY_FILE) {
        return Ok(None);
    }
    eprintln!("{} is already finished; its summary is {}", dir.path.display(), dir.file(run::SUMMARY_FILE).display());
    Ok(Some(Summary::read(&dir.file(run::SUMMARY_FILE))?))
}

fn steps_per_epoch(cfg: &Config, images: usize) -> Result<usize> {
    let t = &cfg.train;
    let steps = batches_per_epoch(images, t.batch_size, t.drop_last);
    if steps == 0 {
        bail!("the training set has {images} images, fewer than one batch of {} with drop_last", t.batch_size);
    }
    Ok(steps)
}

/// This invocation, as meta.json records a run's start and each resume.
fn invocation(cfg: &Config, opts: &TrainOptions, device: Device) -> RunMeta {
    RunMeta {
        name: cfg.name.clone().unwrap_or_else(|| "run".into()),
        config: opts.config_path.clone(),
        command: opts.command.clone(),
        commit: store::git_commit(),
        seed: cfg.seed,
        device: format!("{device:?}"),
        machine: store::machine_description(device),
        engine: store::engine_description(),
        started_at: store::now_utc(),
        resumes: Vec::new(),
        forked_from: None,
    }
}

/// The lines a run starts with: the data, the steps, and the exits' schedule where there is one.
fn announce(cfg: &Config, images: usize, counts: &[usize], steps: usize, device: Device) {
    let name = cfg.name.as_deref().unwrap_or("run");
    let epochs = cfg.train.epochs;
    eprintln!(
        "{name}: {} {images} images (ρ={}), counts {counts:?}; {epochs} epochs × {steps} steps on {device:?}",
        cfg.dataset(),
        cfg.data.rho,
    );
    let warmup = cfg.loss.exits.route_warmup_epochs;
    if warmup > 0 {
        if warmup < epochs {
            eprintln!("{name}: exits accumulate for epochs 1–{warmup}, then route from epoch {}", warmup + 1);
        } else {
            eprintln!(
                "{name}: warning: loss.route_warmup_epochs = {warmup} ≥ train.epochs = {epochs}: this run never routes"
            );
        }
    }
    if let Some(close) = cfg.loss.exits.exits_close_epoch {
        eprintln!(
            "{name}: training exits close after epoch {close}: from epoch {} every sample reaches the final head",
            close + 1
        );
    }
}
