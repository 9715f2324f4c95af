//! One epoch of SGD steps over the training set, in the order its seed and epoch fix, and what
//! it adds up to: mean loss, training accuracy, the images each exit took, the speed.
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tch::Device;

use super::graphed::{self, GraphedStep};
use super::progress::{progress_bar, step_message};
use super::run_files::{self, EpochStart, SoFar};
use super::setup::Session;
use super::tensorboard::EventWriter;
use crate::config::Config;
use crate::data::image::ImageSet;
use crate::data::loader::EpochLoader;
use crate::loss::Criterion;
use crate::run::{EpochRecord, EpochSums, RunDir};
use crate::score::metrics::{exit_fractions, Accuracy, Group};

/// How an epoch's steps ended.
pub enum EpochEnd {
    /// Every step ran.
    Done(EpochSums),
    /// A signal asked for a stop (`crate::interrupt`): `step` steps of the epoch ran, and
    /// their sums are those of an uninterrupted epoch after as many steps.
    Interrupted { sums: EpochSums, step: usize, signal: i32 },
}

/// What an epoch trains with, fixed for the whole run.
pub struct EpochInputs<'a> {
    pub cfg: &'a Config,
    /// Where a diverged step leaves its message.
    pub dir: &'a RunDir,
    pub train_set: &'a Arc<ImageSet>,
    pub criterion: &'a Criterion,
    pub device: Device,
    pub steps: usize,
    pub num_classes: usize,
    pub plain: bool,
}

/// Train epoch `epoch` (0-based) at learning rate `lr` from `start`, the bar titled `prefix`.
/// A step the divergence guard stops ends the run with its message written into the run
/// directory (`run_files::diverged`), before any weight changes. A stop requested by a signal
/// is honoured after the step in progress, unless that was the epoch's last (the epoch then
/// ends as usual and the trainer stops before the next one).
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    inputs: &EpochInputs,
    session: &mut Session,
    mut graphed: Option<&mut GraphedStep>,
    mut events: Option<&mut EventWriter>,
    epoch: usize,
    lr: f64,
    prefix: String,
    so_far: &SoFar,
    start: EpochStart,
) -> Result<EpochEnd> {
    let (cfg, t) = (inputs.cfg, &inputs.cfg.train);
    let started = Instant::now();
    let mut loader = EpochLoader::new(
        inputs.train_set.clone(),
        t.batch_size,
        t.drop_last,
        Some(cfg.data.augment.clone()),
        cfg.seed,
        epoch,
        t.workers,
        start.step,
    );
    let pb = progress_bar(inputs.steps, inputs.plain);
    pb.set_prefix(prefix);
    pb.set_position(start.step as u64);
    let mut sums = start.sums;
    let (seen_before, seconds_before) = (sums.seen, sums.train_seconds);
    for (i, batch) in (start.step..).zip(loader.by_ref()) {
        let n = batch.len();
        let out = super::memory::guarded("a training step", || {
            graphed::train_step(
                graphed.as_deref_mut(),
                &session.net,
                &mut session.opt,
                inputs.criterion,
                &batch,
                inputs.device,
                t.channels_last,
                epoch,
                lr,
            )
            .map_err(anyhow::Error::from)
        })?;
        let out = out.map_err(|what| run_files::diverged(inputs.dir, epoch, i, &what))?;
        sums.add_step(out.loss, out.correct, n, &out.exit_counts, inputs.num_classes);
        if let Some(ev) = events.as_deref_mut() {
            ev.step((epoch * inputs.steps + i + 1) as i64, out.loss, lr)?;
        }
        let ips = (sums.seen - seen_before) as f64 / started.elapsed().as_secs_f64();
        pb.set_message(step_message(sums.loss_sum / sums.seen as f64, lr, ips, so_far.last.as_ref()));
        pb.inc(1);
        test_hook::count_step();
        let signal = crate::interrupt::requested().filter(|_| i + 1 < inputs.steps);
        if let Some(signal) = signal {
            pb.finish_and_clear();
            sums.finish_segment(seconds_before, started, loader.waited);
            return Ok(EpochEnd::Interrupted { sums, step: i + 1, signal });
        }
    }
    pb.finish_and_clear();
    sums.finish_segment(seconds_before, started, loader.waited);
    drop(loader);
    Ok(EpochEnd::Done(sums))
}

impl EpochSums {
    /// One step's share: `loss` is the batch mean over its `n` images.
    fn add_step(&mut self, loss: f64, correct: f64, n: usize, exit_counts: &[Vec<f64>], num_classes: usize) {
        self.loss_sum += loss * n as f64;
        self.correct += correct;
        self.seen += n;
        self.exit_counts.resize(exit_counts.len().max(self.exit_counts.len()), vec![0.0; num_classes]);
        for (acc, step) in self.exit_counts.iter_mut().zip(exit_counts) {
            acc.iter_mut().zip(step).for_each(|(a, c)| *a += c);
        }
    }

    /// The time of this invocation's steps, added to that of the segments before it.
    fn finish_segment(&mut self, seconds_before: f64, started: Instant, waited: std::time::Duration) {
        self.train_seconds = seconds_before + started.elapsed().as_secs_f64();
        self.data_wait_seconds += waited.as_secs_f64();
    }

    /// The epoch's line of `metrics.jsonl`: `seconds` include its evaluation, the test scores
    /// are those of this epoch's evaluation (none on epochs the cadence skips).
    pub fn record(
        &self,
        epochs_done: usize,
        lr: f64,
        seconds: f64,
        groups: &[Group],
        test: Option<Accuracy>,
        test_branches: Option<Vec<Accuracy>>,
    ) -> EpochRecord {
        let (train_exit_fractions, train_exit_fractions_by_group) = if self.exit_counts.is_empty() {
            (None, None)
        } else {
            let (overall, by_group) = exit_fractions(&self.exit_counts, groups);
            (Some(overall), Some(by_group))
        };
        EpochRecord {
            epoch: epochs_done,
            lr,
            train_loss: self.loss_sum / self.seen as f64,
            train_acc: 100.0 * self.correct / self.seen as f64,
            images_per_second: self.seen as f64 / self.train_seconds,
            seconds,
            data_wait_seconds: self.data_wait_seconds,
            train_exit_fractions,
            train_exit_fractions_by_group,
            train_exit_counts: (!self.exit_counts.is_empty())
                .then(|| self.exit_counts.iter().map(|row| row.iter().map(|&n| n.round() as u64).collect()).collect()),
            test,
            test_branches,
        }
    }
}

/// A test of the signal path needs a signal at an exact step: `LONGTAIL_TEST_SIGNAL_AFTER_STEPS=N`
/// raises SIGTERM in this process after its N-th training step (tests only; unset, nothing).
mod test_hook {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    static STEPS: AtomicUsize = AtomicUsize::new(0);

    pub fn count_step() {
        static AFTER: OnceLock<Option<usize>> = OnceLock::new();
        let after = AFTER.get_or_init(|| std::env::var("LONGTAIL_TEST_SIGNAL_AFTER_STEPS").ok()?.parse().ok());
        if let Some(after) = *after {
            if STEPS.fetch_add(1, Ordering::SeqCst) + 1 == after {
                crate::interrupt::raise(libc::SIGTERM);
            }
        }
    }
}
