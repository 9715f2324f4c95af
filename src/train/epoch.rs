//! One epoch of SGD steps over the training set, in the order its seed and epoch fix, and what
//! it adds up to: mean loss, training accuracy, the images each exit took, the speed.
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use tch::Device;

use super::graphed::{self, GraphedStep};
use super::progress::{progress_bar, step_message};
use super::run_files::{self, SoFar};
use super::setup::Session;
use crate::config::Config;
use crate::data::image::ImageSet;
use crate::data::loader::EpochLoader;
use crate::loss::Criterion;
use crate::run::{EpochRecord, RunDir};
use crate::score::metrics::{exit_fractions, Accuracy, Group};

/// What one epoch's steps add up to.
pub struct EpochTotals {
    pub loss_sum: f64,
    pub correct: f64,
    pub seen: usize,
    /// Training images leaving at each exit, per class: [exit][class] (empty without exits).
    pub exit_counts: Vec<Vec<f64>>,
    pub train_seconds: f64,
    pub data_wait_seconds: f64,
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

/// Train epoch `epoch` (0-based) at learning rate `lr`, the bar titled `prefix`. A step the
/// divergence guard stops ends the run with its message written into the run directory
/// (`run_files::diverged`), before any weight changes.
pub fn train_epoch(
    inputs: &EpochInputs,
    session: &mut Session,
    graphed: Option<&mut GraphedStep>,
    epoch: usize,
    lr: f64,
    prefix: String,
    so_far: &SoFar,
) -> Result<EpochTotals> {
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
        0,
    );
    let pb = progress_bar(inputs.steps, inputs.plain);
    pb.set_prefix(prefix);
    let mut graphed = graphed;
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0usize);
    let mut exit_counts: Vec<Vec<f64>> = Vec::new();
    for (i, batch) in loader.by_ref().enumerate() {
        let n = batch.len();
        let out = graphed::train_step(
            graphed.as_deref_mut(),
            &session.net,
            &mut session.opt,
            inputs.criterion,
            &batch,
            inputs.device,
            t.channels_last,
            epoch,
            lr,
        )?;
        let out = out.map_err(|what| run_files::diverged(inputs.dir, epoch, i, &what, so_far.epochs_done))?;
        loss_sum += out.loss * n as f64;
        correct += out.correct;
        seen += n;
        exit_counts.resize(out.exit_counts.len().max(exit_counts.len()), vec![0.0; inputs.num_classes]);
        for (acc, step) in exit_counts.iter_mut().zip(&out.exit_counts) {
            acc.iter_mut().zip(step).for_each(|(a, c)| *a += c);
        }
        let ips = seen as f64 / started.elapsed().as_secs_f64();
        pb.set_message(step_message(loss_sum / seen as f64, lr, ips, so_far.last.as_ref()));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let data_wait_seconds = loader.waited.as_secs_f64();
    drop(loader);
    Ok(EpochTotals {
        loss_sum,
        correct,
        seen,
        exit_counts,
        train_seconds: started.elapsed().as_secs_f64(),
        data_wait_seconds,
    })
}

impl EpochTotals {
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
