//! The end of a run: the last weights scored once more where the loop left no evaluation in
//! memory, early-exit inference at the configured threshold and over the sweep, and the summary
//! that `report`, `publish` and `reproduce` read.
use crate::config::Config;
use crate::model::Network;
use crate::run::{EpochScore, GroupsInfo, RunMeta, Summary, SUMMARY_SCHEMA};
use crate::score::early_exit::{early_exit_at, exit_scores, exits_alone, EarlyExit, SWEEP};
use crate::score::metrics::{Accuracy, Evaluation, Group};
use crate::score::predict::{score, TestSet};
use crate::store;

use super::run_files::SoFar;

/// The final weights' scores on the test set.
pub struct FinalScores {
    pub fused: Evaluation,
    pub branches: Option<Vec<Accuracy>>,
    pub early_exit: Option<EarlyExit>,
    pub early_exit_sweep: Vec<EarlyExit>,
    pub exits_alone: Option<Vec<Accuracy>>,
}

/// Score the final weights: the last epoch's evaluation where the loop made one (`last`), else a
/// new one (a resumed run killed right after its last checkpoint has none in memory); early exit
/// for models with exits.
pub fn final_scores(
    cfg: &Config,
    net: &Network,
    test: &TestSet,
    groups: &[Group],
    num_classes: usize,
    last: Option<(Evaluation, Option<Vec<Accuracy>>)>,
) -> FinalScores {
    let (fused, branches) = last.unwrap_or_else(|| {
        let scored = score(net, test, cfg.eval.batch_size, num_classes, groups);
        (scored.fused, scored.branches)
    });
    if !net.has_exits() {
        return FinalScores { fused, branches, early_exit: None, early_exit_sweep: Vec::new(), exits_alone: None };
    }
    let scores = exit_scores(net, test, cfg.eval.batch_size, cfg.loss.ldam.scale);
    let costs = net.cost_model();
    let at = |tau| early_exit_at(&scores, &test.labels, groups, num_classes, &costs, tau);
    FinalScores {
        fused,
        branches,
        early_exit: Some(at(cfg.inference_exit_threshold())),
        early_exit_sweep: SWEEP.iter().map(|&t| at(t)).collect(),
        exits_alone: Some(exits_alone(&scores, &test.labels, groups, num_classes)),
    }
}

/// The run's summary, from its config, its metadata (meta.json), where it stands and the final
/// scores. The analyses after training (timing, selection, averaging, precise BN) start empty.
pub fn summary(cfg: &Config, meta: RunMeta, so_far: SoFar, scores: FinalScores, groups: GroupsInfo) -> Summary {
    let last = so_far.last.unwrap_or_else(|| EpochScore::new(so_far.epochs_done, &scores.fused.accuracy));
    let best = so_far.best.unwrap_or_else(|| last.clone());
    Summary {
        schema_version: SUMMARY_SCHEMA,
        name: cfg.name.clone().unwrap_or_else(|| "run".into()),
        config: meta.config,
        command: meta.command,
        commit: meta.commit,
        seed: cfg.seed,
        dataset: cfg.dataset(),
        rho: cfg.data.rho,
        subset_seed: cfg.data.subset_seed,
        epochs: cfg.train.epochs,
        best,
        last,
        groups,
        last_per_class: scores.fused.accuracy.per_class.clone(),
        last_confusion: scores.fused.confusion,
        last_branches: scores.branches,
        last_exits_alone: scores.exits_alone,
        early_exit: scores.early_exit,
        early_exit_sweep: scores.early_exit_sweep,
        wall_seconds: so_far.wall_seconds,
        precision: cfg.train.precision,
        device: meta.device,
        machine: meta.machine,
        engine: meta.engine,
        started_at: meta.started_at,
        finished_at: store::now_utc(),
        resumes: meta.resumes,
        forked_from: meta.forked_from,
        early_exit_timing: None,
        weight_average: None,
        selected_on_validation: None,
        stage_two: None,
        precise_bn: None,
    }
}
