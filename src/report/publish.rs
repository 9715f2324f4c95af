//! `longtail publish`: copy a finished run's summary to `results/<name>.json`, with the files
//! `eval` wrote about the same weights (early-exit timing, precise BN, weight average),
//! `select`'s choice of epoch and `rebalance`'s second-stage methods attached.
//! A file about other weights (the run was resumed or retrained after the eval) is refused, so a
//! published number is always about the weights it names; an existing result is never replaced
//! without `force`.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::run::PreciseBnReport;
use crate::run::{self, RunDir, Summary, Weights};
use crate::store;

/// The published file, and what the reader should know about it.
#[derive(Debug)]
pub struct Published {
    pub path: PathBuf,
    /// Things attached without a check (files older than the check).
    pub notes: Vec<String>,
}

/// Write `results/<name>.json` (name: the run's own unless given) from `run_dir`'s summary.
pub fn publish(run_dir: &Path, name: Option<&str>, results: &Path, force: bool) -> Result<Published> {
    let dir = RunDir::new(run_dir);
    let summary_path = dir.file(run::SUMMARY_FILE);
    if !summary_path.exists() {
        bail!("{} has no {} yet: the run has not finished", run_dir.display(), run::SUMMARY_FILE);
    }
    // No eval or select may rewrite the files being attached while they are read.
    let _lock = dir.lock("publish")?;
    let mut summary = Summary::read(&summary_path)?;
    let mut notes = Vec::new();
    if let Some(timing) = dir.early_exit_timing()? {
        let file = dir.file(run::TIMING_FILE);
        match timing.epoch {
            Some(epoch) => refuse_other_weights(&summary, &file, run_dir, timing.weights, epoch, "--timing")?,
            None => notes.push(format!(
                "note: {} does not say which epoch it timed (written before eval recorded it); attached unchecked",
                file.display()
            )),
        }
        let configured = summary.early_exit.as_ref().map(|e| e.threshold);
        if let Some(other) = timing.rows.iter().map(|r| r.tau).find(|&t| Some(t) != configured) {
            bail!(
                "{} timed early exits at τ = {other}, not at the run's configured τ{}: run `longtail eval {} --timing` again",
                file.display(),
                configured.map_or(String::new(), |t| format!(" = {t}")),
                run_dir.display()
            );
        }
        summary.early_exit_timing = Some(timing);
    }
    summary.precise_bn = about_the_run(&summary, &dir.file(run::PRECISE_BN_FILE), run_dir, dir.precise_bn()?)?;
    summary.weight_average =
        about_the_run(&summary, &dir.file(run::WEIGHT_AVERAGE_FILE), run_dir, dir.weight_average()?)?;
    if let Some(selection) = dir.validation_selection()? {
        if selection.run_epochs != summary.last.epoch {
            bail!(
                "{} chose among the epochs of a run that ended at epoch {}, but the run now ends at epoch {}: run `longtail select {}` again",
                dir.file(run::SELECTION_FILE).display(),
                selection.run_epochs,
                summary.last.epoch,
                run_dir.display()
            );
        }
        summary.selected_on_validation = Some(selection);
    }
    if let Some(stage_two) = dir.stage_two()? {
        // The methods start from the epoch `select` chose, else the last: the file must be
        // about the weights this result names.
        let expected = summary.selected_on_validation.as_ref().map_or(summary.last.epoch, |s| s.selected.epoch);
        if stage_two.run_epochs != summary.last.epoch || stage_two.epoch != expected {
            bail!(
                "{} re-balanced the weights of epoch {} of a run that ended at epoch {}, but this result names epoch {expected} of a run that ends at epoch {}: run `longtail rebalance {}` again",
                dir.file(run::STAGE_TWO_FILE).display(),
                stage_two.epoch,
                stage_two.run_epochs,
                summary.last.epoch,
                run_dir.display()
            );
        }
        summary.stage_two = Some(stage_two);
    }
    let name = name.map_or_else(|| summary.name.clone(), str::to_string);
    // The name becomes results/<name>.json: it must not lead out of the results folder.
    crate::check::plain_name("the result's name (--name, or the run's)", &name)?;
    std::fs::create_dir_all(results).with_context(|| format!("cannot create {}", results.display()))?;
    let path = results.join(format!("{name}.json"));
    if path.exists() && !force {
        bail!("{} exists; pass --force to replace it, or --name to publish beside it", path.display());
    }
    let mut text = serde_json::to_string_pretty(&summary)?;
    text.push('\n');
    store::atomic_write(&path, text.as_bytes())?;
    // The folder's SHA256SUMS vouches for every published result; the table and `diff` check it.
    store::record_in_sums(&path, text.as_bytes())?;
    Ok(Published { path, notes })
}

/// `eval --precise-bn`'s or `eval --average-from`'s report, if there is one, once
/// [`refuse_other_weights`] has checked that it describes the run's weights.
fn about_the_run(
    summary: &Summary,
    file: &Path,
    run_dir: &Path,
    report: Option<PreciseBnReport>,
) -> Result<Option<PreciseBnReport>> {
    let Some(report) = report else { return Ok(None) };
    let flag = match report.averaged_from {
        Some(from) => format!("--average-from {from}"),
        None => "--precise-bn".to_string(),
    };
    refuse_other_weights(summary, file, run_dir, report.weights, report.epoch, &flag)?;
    Ok(Some(report))
}

/// A run resumed (or retrained) after an `eval` has other weights than the eval's file
/// describes: such a file is refused rather than attached to numbers it is not about.
fn refuse_other_weights(
    summary: &Summary,
    file: &Path,
    run_dir: &Path,
    weights: Weights,
    epoch: usize,
    flag: &str,
) -> Result<()> {
    let expected = summary.epoch_of(weights);
    if expected != epoch {
        bail!(
            "{} describes the {weights} weights of epoch {epoch}, but the run's are from epoch {expected}: run `longtail eval {} {flag}` again",
            file.display(),
            run_dir.display()
        );
    }
    Ok(())
}
