//! `longtail eval`: evaluate a finished (or paused) run's saved weights on the test set.
//!
//! Which weights: the last checkpoint, the best epoch's, or the mean of the weights kept over the
//! last epochs (`average`). Optionally with BatchNorm statistics recomputed (`precise_bn`), an
//! early-exit sweep over thresholds, and wall-clock timing of early exits that really stop. What
//! is measured is returned as an [`EvalOutcome`]; the files `publish` attaches (timing, precise BN,
//! weight average) are written here, next to the run's own files, never over them.
use std::path::PathBuf;

use anyhow::Result;

use super::precise_bn;
use super::saved::SavedRun;
use crate::run::{self, EpochScore, GroupsInfo, PreciseBnReport, RunDir, TimingReport, Weights};
use crate::score::early_exit::{self, EarlyExit};
use crate::score::metrics::parts_alone;
use crate::score::predict::TestSet;
use crate::store::{self, Provenance};

/// Interleaved passes per way in `--timing` (the medians are reported).
const TIMING_REPETITIONS: usize = 3;

/// A request that cannot be carried out, said before any data is read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalRequestError {
    #[error("--precise-bn 0: give at least one batch (default {})", precise_bn::DEFAULT_BATCHES)]
    NoBatches,
    #[error("--average-from averages the kept weights up to the last epoch; --weights {0} does not apply")]
    AverageOfBest(Weights),
    #[error("--timing times the saved weights; run it without --average-from")]
    TimingOfAverage,
    #[error("--exit-threshold / --timing: this run's model has no early exits")]
    NoExits,
}

/// What `longtail eval` was asked to do.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub run_dir: PathBuf,
    /// Dataset folder (else the run's config and the usual search).
    pub data: Option<PathBuf>,
    pub weights: Weights,
    /// Early-exit thresholds to sweep (empty: the configured τ only).
    pub thresholds: Vec<f64>,
    pub timing: bool,
    /// Recompute BN statistics over this many training batches.
    pub precise_bn: Option<usize>,
    /// Average the weights kept from this epoch to the last.
    pub average_from: Option<usize>,
}

impl EvalRequest {
    /// The checks that need no file: contradictory flags fail before any work is done.
    pub fn validate(&self) -> Result<(), EvalRequestError> {
        if self.precise_bn == Some(0) {
            return Err(EvalRequestError::NoBatches);
        }
        if self.average_from.is_some() && self.weights != Weights::Last {
            return Err(EvalRequestError::AverageOfBest(self.weights));
        }
        if self.average_from.is_some() && self.timing {
            return Err(EvalRequestError::TimingOfAverage);
        }
        Ok(())
    }

    /// BN statistics are recomputed when asked, and always for averaged weights, which have no
    /// statistics of their own.
    fn bn_batches(&self) -> Option<usize> {
        self.precise_bn.or(self.average_from.map(|_| precise_bn::DEFAULT_BATCHES))
    }
}

/// Everything `eval` measured, in the order it is shown (`report::evaluation::render`).
#[derive(Debug)]
pub struct EvalOutcome {
    /// What was done to the weights before evaluating (averaging, BN recomputation).
    pub notes: Vec<String>,
    /// How the weights are named in the tables, e.g. "last, precise BN".
    pub label: String,
    /// Full depth first, then each branch and exit answering alone.
    pub scores: Vec<(String, EpochScore)>,
    pub groups: GroupsInfo,
    /// Per-class accuracy of full depth (unnamed) and of each early exit alone.
    pub per_class: Vec<(Option<String>, Vec<f64>)>,
    /// Early-exit inference at each requested threshold (runs with exits).
    pub early_exit: Vec<EarlyExit>,
    pub timing: Option<TimingReport>,
    /// Files written for `publish`.
    pub written: Vec<PathBuf>,
}

/// Evaluate the weights `req` names; write the timing / precise-BN / weight-average file when
/// asked for. The run's checkpoints are only read.
pub fn evaluate_run(req: &EvalRequest) -> Result<EvalOutcome> {
    req.validate()?;
    let dir = RunDir::new(&req.run_dir);
    // Writing a file into the run (timing, precise BN, weight average) takes its lock, so it is
    // refused while the run trains; a plain evaluation only reads.
    let writes = req.timing || req.precise_bn.is_some() || req.average_from.is_some();
    let _lock = if writes && dir.exists(run::STATE_FILE) { Some(dir.lock("eval")?) } else { None };
    let mut run = SavedRun::open(&req.run_dir, req.data.as_deref())?;
    if (!req.thresholds.is_empty() || req.timing) && !run.net.has_exits() {
        return Err(EvalRequestError::NoExits.into());
    }
    let (epoch, mut notes) = load_weights(&mut run, req)?;
    let recomputed = match req.bn_batches() {
        Some(n) => {
            let done = recompute_bn(&run, n)?;
            let untouched = match req.average_from {
                Some(_) => run.dir.file(run::KEPT_WEIGHTS_DIR),
                None => run.dir.file(&weights_file(&run, req.weights)),
            };
            notes.push(format!(
                "BatchNorm statistics of {} layers recomputed over {} training batches ({} images); {} is unchanged.\n",
                done.layers,
                done.batches,
                done.images,
                untouched.display()
            ));
            Some(done)
        }
        None => None,
    };

    let test = run.test_set();
    let classes = run.num_classes();
    let scored = run.score(&test);
    let full = scored.fused.accuracy;
    let branches = scored.branches.unwrap_or_default();
    let (cfg, net, groups) = (&run.cfg, &run.net, &run.groups);
    let scores = net.has_exits().then(|| early_exit::exit_scores(net, &test, cfg.eval.batch_size, cfg.loss.ldam.scale));
    let exits = scores.as_ref().map_or_else(Vec::new, |s| early_exit::exits_alone(s, &test.labels, groups, classes));
    let parts = parts_alone(&branches, &exits);
    let label = match req.average_from {
        Some(from) => format!("epochs {from}–{epoch} averaged, precise BN"),
        None if recomputed.is_some() => format!("{}, precise BN", req.weights),
        None => req.weights.to_string(),
    };
    let mut score_rows = vec![(label.clone(), EpochScore::new(epoch, &full))];
    score_rows.extend(parts.iter().map(|(name, acc)| (name.clone(), EpochScore::new(epoch, acc))));
    // Per class for the early exits only: an exit keeping one class to itself shows here
    // (results/model-4); the branches have their own plot in the run report.
    let mut per_class = vec![(None, full.per_class.clone())];
    per_class.extend(parts[parts.len() - exits.len()..].iter().map(|(n, a)| (Some(n.clone()), a.per_class.clone())));

    let mut outcome = EvalOutcome {
        notes,
        label,
        scores: score_rows,
        groups: GroupsInfo::new(run.group_rule().describe(), run.data.train_counts.clone(), groups),
        per_class,
        early_exit: Vec::new(),
        timing: None,
        written: Vec::new(),
    };
    let mut configured_exit = None;
    if let Some(scores) = &scores {
        let costs = net.cost_model();
        let configured_tau = cfg.inference_exit_threshold();
        let at = |t: f64| early_exit::early_exit_at(scores, &test.labels, groups, classes, &costs, t);
        let taus = if req.thresholds.is_empty() { vec![configured_tau] } else { req.thresholds.clone() };
        outcome.early_exit = taus.iter().map(|&t| at(t)).collect();
        // The saved results (precise BN, timing) are always at the configured τ, whatever the
        // sweep asked for: that is the τ of the early exit `publish` attaches them to.
        if recomputed.is_some() {
            configured_exit = Some(at(configured_tau));
        }
        if req.timing {
            let report = time_early_exit(&run, &test, req.weights, epoch);
            let path = run.dir.file(run::TIMING_FILE);
            store::write_json(&path, &report)?;
            outcome.timing = Some(report);
            outcome.written.push(path);
        }
    }
    if let Some(done) = recomputed {
        let report = PreciseBnReport {
            weights: req.weights,
            epoch,
            averaged_from: req.average_from,
            layers: done.layers,
            batches: done.batches,
            images: done.images,
            full_depth: full,
            exits_alone: exits,
            early_exit: configured_exit,
            provenance: Provenance::now(run.device),
        };
        let name = if req.average_from.is_some() { run::WEIGHT_AVERAGE_FILE } else { run::PRECISE_BN_FILE };
        let path = run.dir.file(name);
        store::write_json(&path, &report)?;
        outcome.written.push(path);
    }
    Ok(outcome)
}

/// The run's file holding `weights`.
fn weights_file(run: &SavedRun, weights: Weights) -> String {
    match weights {
        Weights::Best => run::BEST_WEIGHTS.to_string(),
        Weights::Last => run.state.checkpoint.clone(),
    }
}

/// Load the weights `req` names (or the average of the kept ones); their epoch, and a note
/// when they were averaged.
fn load_weights(run: &mut SavedRun, req: &EvalRequest) -> Result<(usize, Vec<String>)> {
    let epoch = match req.weights {
        Weights::Best => run.state.best.as_ref().map_or(0, |b| b.epoch),
        Weights::Last => run.state.epochs_done,
    };
    match req.average_from {
        Some(from) => {
            let files = super::average::kept_files(&run.dir, from, epoch)?;
            let n = super::average::load_average(&mut run.vs, &files)?;
            Ok((epoch, vec![format!("Weights of epochs {from}–{epoch} averaged ({n} files).")]))
        }
        None => {
            run.load(&weights_file(run, req.weights))?;
            let mut notes = Vec::new();
            if req.weights == Weights::Last && run.state.step > 0 {
                notes.push(format!(
                    "The run stopped in the middle of epoch {} (after step {}): these are the weights from there, \
                     not from the end of epoch {epoch}.",
                    epoch + 1,
                    run.state.step
                ));
            }
            Ok((epoch, notes))
        }
    }
}

/// Recompute the loaded weights' BatchNorm statistics over `batches` training batches.
fn recompute_bn(run: &SavedRun, batches: usize) -> Result<precise_bn::Recomputed> {
    let cfg = &run.cfg;
    let batches = precise_bn::training_batches(
        &run.data.train,
        &cfg.data.augment,
        cfg.train.batch_size,
        cfg.seed,
        cfg.train.epochs,
        batches,
        run.device,
        cfg.train.channels_last,
    )
    .map_err(|e| anyhow::anyhow!("--precise-bn: {e}"))?;
    Ok(precise_bn::recompute(&run.vs, batches, |xs| {
        let _ = run.net.forward(xs, true);
    }))
}

/// Time full-depth against early-exit inference at the configured τ, one image at a time and in
/// batches of 256.
fn time_early_exit(run: &SavedRun, test: &TestSet, weights: Weights, epoch: usize) -> TimingReport {
    let tau = run.cfg.inference_exit_threshold();
    let rows = [(1, 1000), (256, test.len())]
        .into_iter()
        .map(|(batch, images)| {
            early_exit::time_early_exit(&run.net, test, batch, images, tau, run.cfg.loss.ldam.scale, TIMING_REPETITIONS)
        })
        .collect();
    TimingReport {
        weights,
        epoch: Some(epoch),
        provenance: Provenance::now(run.device),
        machine: store::machine_description(run.device),
        engine: store::engine_description(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> EvalRequest {
        EvalRequest {
            run_dir: PathBuf::from("runs/x"),
            data: None,
            weights: Weights::Last,
            thresholds: Vec::new(),
            timing: false,
            precise_bn: None,
            average_from: None,
        }
    }

    #[test]
    fn contradictory_flags_are_refused_before_any_work() {
        assert_eq!(request().validate(), Ok(()));
        let zero = EvalRequest { precise_bn: Some(0), ..request() };
        assert_eq!(zero.validate(), Err(EvalRequestError::NoBatches));
        let best = EvalRequest { average_from: Some(161), weights: Weights::Best, ..request() };
        assert_eq!(best.validate(), Err(EvalRequestError::AverageOfBest(Weights::Best)));
        assert!(best.validate().unwrap_err().to_string().contains("--weights best does not apply"));
        let timed = EvalRequest { average_from: Some(161), timing: true, ..request() };
        assert_eq!(timed.validate(), Err(EvalRequestError::TimingOfAverage));
    }

    #[test]
    fn averaged_weights_always_get_their_own_bn_statistics() {
        assert_eq!(request().bn_batches(), None);
        assert_eq!(EvalRequest { precise_bn: Some(50), ..request() }.bn_batches(), Some(50));
        let averaged = EvalRequest { average_from: Some(161), ..request() };
        assert_eq!(averaged.bn_batches(), Some(precise_bn::DEFAULT_BATCHES));
        let both = EvalRequest { average_from: Some(161), precise_bn: Some(20), ..request() };
        assert_eq!(both.bn_batches(), Some(20));
    }

    #[test]
    fn a_folder_without_a_run_is_named_in_the_error() {
        let tmp = std::env::temp_dir().join(format!("longtail-eval-empty-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let err = evaluate_run(&EvalRequest { run_dir: tmp.clone(), ..request() }).unwrap_err();
        assert!(format!("{err:#}").contains(&tmp.display().to_string()), "{err:#}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
