//! `longtail select`: choose a run's final epoch on held-out validation images, not on the test
//! set.
//!
//! The reference codebases report the best test epoch, which picks the number on the data it is
//! then scored on. Here every epoch whose weights the run kept (`train --keep-weights-from`) is
//! scored on a validation set drawn from the training images the long-tailed subset leaves out
//! (`data::validation`); the epoch with the highest validation accuracy is chosen by a rule fixed
//! in advance, and only then is it scored on the test set. The result (`validation_selection.json`,
//! attached by `publish`) and a plot of validation against test accuracy go to the run directory.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::saved::SavedRun;
use crate::config::Config;
use crate::data::cifar;
use crate::data::subset::long_tailed_indices;
use crate::data::validation::{held_out_indices, per_class_counts, VALIDATION_SEED};
use crate::run::{self, Candidate, EpochScore, RunDir, ValidationSelection, ValidationSet};
use crate::score::early_exit;
use crate::score::metrics::Accuracy;
use crate::score::predict::TestSet;
use crate::store::{self, Provenance};

/// The plot written beside the result.
pub const SELECTION_PLOT: &str = "validation_selection.png";

/// The rule, as the result file states it.
pub const RULE: &str = "the kept epoch with the highest full-depth validation accuracy (mean over the validation \
                        classes); a tie goes to the later epoch";

/// What `longtail select` was asked to do.
#[derive(Debug, Clone)]
pub struct SelectRequest {
    pub run_dir: PathBuf,
    /// The CIFAR binary folder (else the run's config and the usual search). A packed dataset
    /// will not do: it holds only the subset's images.
    pub data: Option<PathBuf>,
    /// Validation images per class at most.
    pub per_class: usize,
}

/// Mean accuracy over the classes that have validation images: the balanced accuracy the test set
/// measures, less the classes the subset leaves nothing of.
pub fn validation_accuracy(acc: &Accuracy, per_class: &[usize]) -> f64 {
    let present: Vec<f64> = acc.per_class.iter().zip(per_class).filter(|(_, &n)| n > 0).map(|(a, _)| *a).collect();
    present.iter().sum::<f64>() / present.len().max(1) as f64
}

/// The index of the candidate the rule picks: highest validation accuracy, ties to the later.
pub fn choose(candidates: &[Candidate]) -> Option<usize> {
    (0..candidates.len())
        .reduce(|best, i| if candidates[i].validation >= candidates[best].validation { i } else { best })
}

/// The epochs whose weights `dir` kept, up to `last`.
fn kept_epochs(dir: &RunDir, last: usize) -> Vec<usize> {
    (1..=last).filter(|&e| dir.exists(&run::kept_weights_file(e))).collect()
}

/// The validation images of `cfg`'s subset: the full training set's images outside it.
pub fn validation_images(
    cfg: &Config,
    data: Option<&std::path::Path>,
    per_class: usize,
) -> Result<(crate::data::image::ImageSet, ValidationSet)> {
    if cfg.data.rho <= 1.0 {
        bail!(
            "data.rho = {}: the run trains on the whole training set, so no image is left to validate on",
            cfg.data.rho
        );
    }
    let kind = cfg.data.dataset;
    let dir = cifar::find_dir(kind, data).context(
        "select draws its validation images from the training images the subset leaves out, so it needs the \
         CIFAR binary release (--data), not a packed subset",
    )?;
    let full = cifar::load_train(kind, &dir)?;
    let used = long_tailed_indices(&full.labels, full.num_classes, cfg.data.rho, cfg.data.subset_seed);
    let chosen = held_out_indices(&full.labels, full.num_classes, &used, per_class, VALIDATION_SEED);
    let counts = per_class_counts(&full.labels, &chosen, full.num_classes);
    let set = ValidationSet {
        source: format!(
            "{} training images outside the ρ = {} subset (subset seed {})",
            kind.name(),
            cfg.data.rho,
            cfg.data.subset_seed
        ),
        seed: VALIDATION_SEED,
        per_class: counts,
        images: chosen.len(),
    };
    Ok((full.select(&chosen), set))
}

/// What `select` chose (also written to the run's `SELECTION_FILE`), and the run's name, which
/// the command's plot (`SELECTION_PLOT`) takes for its title.
#[derive(Debug)]
pub struct Selected {
    pub selection: ValidationSelection,
    pub run_name: String,
}

/// Score every kept epoch on the validation set, choose one by [`RULE`], score it on the test
/// set, and write `validation_selection.json` into the run directory.
pub fn select_on_validation(req: &SelectRequest) -> Result<Selected> {
    if req.per_class == 0 {
        bail!("--per-class 0: give at least one validation image per class");
    }
    let mut run = SavedRun::open(&req.run_dir, req.data.as_deref())?;
    // It writes its choice into the run: not while the run trains (it would choose among
    // epochs that are still coming).
    let _lock = run.dir.lock("select")?;
    let epochs = kept_epochs(&run.dir, run.state.epochs_done);
    if epochs.len() < 2 {
        bail!(
            "{} kept the weights of {} epoch(s); there is nothing to choose from. Train with --keep-weights-from N to keep each epoch's weights from N on",
            req.run_dir.display(),
            epochs.len()
        );
    }
    let (val_images, validation) = validation_images(&run.cfg, req.data.as_deref(), req.per_class)?;
    let val = TestSet::new(&val_images, run.device, run.cfg.train.channels_last);
    let logged: Vec<run::EpochRecord> = run.dir.read_metrics()?;
    let logged_test =
        |epoch: usize| logged.iter().find(|r| r.epoch == epoch).and_then(|r| r.test.as_ref().map(|t| t.overall));

    let bar = indicatif::ProgressBar::new(epochs.len() as u64).with_message("validating kept epochs");
    let mut candidates = Vec::with_capacity(epochs.len());
    for &epoch in &epochs {
        run.load(&run::kept_weights_file(epoch))?;
        let acc = run.score(&val).fused.accuracy;
        candidates.push(Candidate {
            epoch,
            validation: validation_accuracy(&acc, &validation.per_class),
            test: logged_test(epoch),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let chosen = &candidates[choose(&candidates).expect("at least two candidates")];

    // Only now is the test set looked at, and only for the chosen epoch.
    run.load(&run::kept_weights_file(chosen.epoch))?;
    let test = run.test_set();
    let full = run.score(&test).fused.accuracy;
    let (cfg, net) = (&run.cfg, &run.net);
    let early_exit = net.has_exits().then(|| {
        let scores = early_exit::exit_scores(net, &test, cfg.eval.batch_size, cfg.loss.ldam.scale);
        let tau = cfg.inference_exit_threshold();
        early_exit::early_exit_at(&scores, &test.labels, &run.groups, run.num_classes(), &net.cost_model(), tau)
    });
    let selection = ValidationSelection {
        validation,
        rule: RULE.to_string(),
        selected: EpochScore::new(chosen.epoch, &full),
        selected_validation: chosen.validation,
        candidates: candidates.clone(),
        early_exit,
        run_epochs: run.state.epochs_done,
        provenance: Provenance::now(run.device),
    };
    store::write_json(&run.dir.file(run::SELECTION_FILE), &selection)?;
    Ok(Selected { selection, run_name: cfg.name.clone().unwrap_or_else(|| "run".into()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(epoch: usize, validation: f64) -> Candidate {
        Candidate { epoch, validation, test: None }
    }

    #[test]
    fn the_highest_validation_accuracy_wins_and_a_tie_goes_to_the_later_epoch() {
        let c = [cand(161, 70.0), cand(162, 72.5), cand(163, 71.0)];
        assert_eq!(choose(&c), Some(1));
        let tie = [cand(161, 72.5), cand(162, 70.0), cand(163, 72.5)];
        assert_eq!(choose(&tie), Some(2));
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn validation_accuracy_averages_only_the_classes_that_have_images() {
        let acc =
            Accuracy { overall: 0.0, many: None, medium: None, few: None, per_class: vec![0.0, 80.0, 60.0, 90.0] };
        // Class 0 has no validation image: its 0 % must not count.
        assert_eq!(validation_accuracy(&acc, &[0, 500, 500, 500]), (80.0 + 60.0 + 90.0) / 3.0);
        assert_eq!(validation_accuracy(&acc, &[1, 1, 1, 1]), (0.0 + 80.0 + 60.0 + 90.0) / 4.0);
    }

    #[test]
    fn a_request_for_no_images_is_refused_before_any_file_is_read() {
        let req = SelectRequest { run_dir: PathBuf::from("does/not/exist"), data: None, per_class: 0 };
        let err = select_on_validation(&req).unwrap_err();
        assert!(err.to_string().contains("--per-class 0"), "{err}");
    }
}
