//! `longtail report <run-dir>`: report.md and report.html next to the run, with its plots.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::document::{html, markdown, Block};
use super::plots;
use super::table;
use crate::run::{self, Analyses, EpochRecord, EpochScore, RunDir, Summary};
use crate::score::early_exit::EarlyExit;
use crate::score::metrics::{fmt_group, Accuracy, Group};
use crate::store;

pub const CURVES_PNG: &str = "curves.png";
pub const PER_CLASS_PNG: &str = "per_class.png";
pub const CONFUSION_PNG: &str = "confusion.png";
pub const BRANCHES_PNG: &str = "branches.png";
pub const EXITS_PNG: &str = "exits.png";
pub const TRAIN_EXITS_PNG: &str = "train_exits.png";
pub const EXIT_SWEEP_PNG: &str = "exit_sweep.png";

fn score_row(label: &str, s: &EpochScore) -> Vec<String> {
    vec![
        label.to_string(),
        s.epoch.to_string(),
        format!("{:.2}", s.overall),
        fmt_group(s.many),
        fmt_group(s.medium),
        fmt_group(s.few),
    ]
}

fn duration(secs: f64) -> String {
    let s = secs as u64;
    format!("{}h {:02}m {:02}s", s / 3600, s % 3600 / 60, s % 60)
}

/// Write the plots, report.md and report.html into the run directory; returns report.md's path.
pub fn write(run_dir: &Path) -> Result<PathBuf> {
    let dir = RunDir::new(run_dir);
    if !dir.exists(run::SUMMARY_FILE) {
        bail!("{} has no {}: reports are made from finished runs", run_dir.display(), run::SUMMARY_FILE);
    }
    let summary = Summary::read(&dir.file(run::SUMMARY_FILE))?;
    let run = RunSources {
        records: dir.read_metrics()?,
        names: summary.dataset.class_names(summary.last_per_class.len()),
        groups: summary.groups.assignment(),
        title: format!("{} ({} ρ={})", summary.name, summary.dataset, summary.rho),
        analyses: dir.analyses(&summary)?,
        summary,
        dir,
    };
    let mut blocks = provenance(&run.summary);
    blocks.extend(accuracy(&run)?);
    blocks.extend(per_class(&run)?);
    blocks.extend(branches(&run)?);
    blocks.extend(early_exits(&run)?);
    blocks.extend(stage_two(&run));
    let title = &run.title;
    let md = format!("# Report: {title}\n\n{}", markdown(&blocks));
    let md_path = run.dir.file("report.md");
    store::atomic_write(&md_path, md.as_bytes())?;
    store::atomic_write(
        &run.dir.file("report.html"),
        html(&format!("Report: {title}"), &blocks, &run.dir.path)?.as_bytes(),
    )?;
    Ok(md_path)
}

/// What a report is made from: the finished run's records and what later analyses added.
struct RunSources {
    dir: RunDir,
    summary: Summary,
    records: Vec<EpochRecord>,
    names: Vec<String>,
    groups: Vec<Group>,
    title: String,
    analyses: Analyses,
}

/// Dataset, seeds, config, commit, machine, command, and any fork or resume.
fn provenance(summary: &Summary) -> Vec<Block> {
    let mut blocks = vec![
        Block::Paragraph(format!(
            "{} ρ={} (subset seed {}), seed {}, {} epochs. Config `{}`; commit `{}`; {} on {} ({}); wall time {}.",
            summary.dataset,
            summary.rho,
            summary.subset_seed,
            summary.seed,
            summary.epochs,
            summary.config.as_deref().unwrap_or("—"),
            summary.commit,
            summary.engine,
            summary.device,
            summary.machine,
            duration(summary.wall_seconds)
        )),
        Block::Paragraph(format!("Command: `{}`", summary.command)),
    ];
    if let Some(f) = &summary.forked_from {
        blocks.push(Block::Paragraph(format!(
            "Forked after epoch {} from run `{}` ({}; commit `{}`: `{}`); changed: {}. Epochs 1–{} and their wall time are the parent's.",
            f.after_epoch,
            f.parent_name,
            f.parent,
            f.parent_commit,
            f.parent_command,
            f.changed.join("; "),
            f.after_epoch
        )));
    }
    for r in &summary.resumes {
        blocks.push(Block::Paragraph(format!(
            "Resumed after epoch {} at {}: commit `{}` on {} ({}): `{}`",
            r.after_epoch, r.at, r.commit, r.device, r.machine, r.command
        )));
    }
    blocks
}

/// The accuracy table (best, last, parts alone and every later analysis), what each analysis
/// is, the groups and the training curves.
fn accuracy(run: &RunSources) -> Result<Vec<Block>> {
    let (summary, dir) = (&run.summary, &run.dir);
    plots::training_curves(&run.records, Some(summary.best.epoch), &run.title, &dir.file(CURVES_PNG))?;
    let mut blocks = Vec::new();
    blocks.push(Block::Heading("Accuracy".into()));
    let head: Vec<String> = ["", "epoch", "overall", "many", "medium", "few"].iter().map(|s| s.to_string()).collect();
    let mut rows = vec![score_row("best epoch", &summary.best), score_row("last epoch", &summary.last)];
    for (name, acc) in summary.last_parts_alone() {
        rows.push(score_row(&format!("last, {name}"), &EpochScore::new(summary.last.epoch, acc)));
    }
    let found = &run.analyses;
    let (precise, average, selection) = (&found.precise_bn, &found.weight_average, &found.selection);
    if let Some(p) = precise {
        rows.push(score_row(&format!("{}, precise BN", p.weights), &EpochScore::new(p.epoch, &p.full_depth)));
    }
    if let Some(a) = average {
        let from = a.averaged_from.unwrap_or(a.epoch);
        rows.push(score_row(
            &format!("epochs {from}–{} averaged, precise BN", a.epoch),
            &EpochScore::new(a.epoch, &a.full_depth),
        ));
    }
    if let Some(v) = selection {
        rows.push(score_row("epoch chosen on validation", &v.selected));
    }
    blocks.push(Block::Table(head, rows));
    // One sentence for every early exit measured beside the trainer's: "<lead> early exit at τ …".
    let early = |lead: &str, exit: Option<&EarlyExit>| {
        exit.map_or(String::new(), |e| {
            format!(
                " {lead} early exit at τ = {} answers {:.2} % ({:.1} % of the MACs saved).",
                e.threshold,
                e.overall,
                100.0 * e.saving
            )
        })
    };
    if let Some(p) = &precise {
        blocks.push(Block::Paragraph(format!(
            "Precise BN: the same {} weights with every BatchNorm's statistics averaged over {} training batches ({} images) instead of the moving average training left (`eval --precise-bn`, commit `{}`).{}",
            p.weights, p.batches, p.images, p.provenance.commit, early("With them,", p.early_exit.as_ref())
        )));
    }
    if let Some(a) = average {
        blocks.push(Block::Paragraph(format!(
            "Weight average: the mean of the weights of epochs {}–{} (kept by `train --keep-weights-from`), with every BatchNorm's statistics recomputed for it over {} training batches (`eval --average-from`, commit `{}`): a final model chosen by a rule, not by the test set.{}",
            a.averaged_from.unwrap_or(a.epoch), a.epoch, a.batches, a.provenance.commit, early("With them,", a.early_exit.as_ref())
        )));
    }
    if let Some(v) = &selection {
        let exit = early("Its", v.early_exit.as_ref());
        blocks.push(Block::Paragraph(format!(
            "Chosen on validation: epoch {} of the {} kept, the highest accuracy ({:.2} %) on {} images ({}), which no epoch trained on; the test set scored only the chosen epoch (`select`, commit `{}`).{exit}",
            v.selected.epoch,
            v.candidates.len(),
            v.selected_validation,
            v.validation.images,
            v.validation.source,
            v.provenance.commit
        )));
        if dir.exists(crate::eval::select::SELECTION_PLOT) {
            blocks.push(Block::Image(
                "Validation accuracy of each kept epoch against its logged test accuracy".into(),
                crate::eval::select::SELECTION_PLOT.into(),
            ));
        }
    }
    blocks.push(Block::Paragraph(format!(
        "Many/Medium/Few by {}: many = classes {:?}, medium = {:?}, few = {:?}. Group accuracy is the mean of its classes' accuracies.",
        summary.groups.rule, summary.groups.many, summary.groups.medium, summary.groups.few
    )));
    blocks.push(Block::Image(
        "Test accuracy per group, training loss and learning rate per epoch".into(),
        CURVES_PNG.into(),
    ));
    Ok(blocks)
}

/// Per-class accuracy with training counts (and, with exits, where each class left) and the
/// confusion matrix.
fn per_class(run: &RunSources) -> Result<Vec<Block>> {
    let (summary, dir, names, groups, records) = (&run.summary, &run.dir, &run.names, &run.groups, &run.records);
    plots::per_class(
        &summary.last_per_class,
        &summary.groups.train_counts,
        groups,
        names,
        &run.title,
        &dir.file(PER_CLASS_PNG),
    )?;
    plots::confusion(&summary.last_confusion, names, &run.title, &dir.file(CONFUSION_PNG))?;
    let mut blocks = Vec::new();
    blocks.push(Block::Heading("Per class (last epoch)".into()));
    blocks.push(Block::Image("Per-class accuracy, head → tail, with training counts".into(), PER_CLASS_PNG.into()));
    // Runs with exits: where each class's training samples left in the last epoch, and each
    // early exit's own test accuracy per class: the two columns that show an exit keeping a
    // class to itself.
    let train_counts = records.last().and_then(|r| r.train_exit_counts.as_ref());
    let exits_alone = summary.last_exits_alone.as_deref().unwrap_or(&[]);
    let rows: Vec<Vec<String>> = (0..summary.last_per_class.len())
        .map(|c| {
            let mut row = vec![
                c.to_string(),
                names[c].clone(),
                summary.groups.train_counts[c].to_string(),
                groups[c].name().to_string(),
                format!("{:.1}", summary.last_per_class[c]),
            ];
            if let Some(counts) = train_counts {
                let total: u64 = counts.iter().filter_map(|row| row.get(c)).sum();
                let shares: Vec<String> = counts
                    .iter()
                    .map(|row| format!("{:.0}", 100.0 * row.get(c).copied().unwrap_or(0) as f64 / total.max(1) as f64))
                    .collect();
                row.push(shares.join(" / "));
            }
            row.extend(exits_alone.iter().map(|a| a.per_class.get(c).map_or("—".into(), |v| format!("{v:.1}"))));
            row
        })
        .collect();
    let mut head: Vec<String> =
        ["class", "name", "train images", "group", "test accuracy"].iter().map(|s| s.to_string()).collect();
    if let Some(counts) = train_counts {
        let exits: Vec<String> = (1..counts.len()).map(|k| k.to_string()).chain(["final".to_string()]).collect();
        head.push(format!("train samples leaving at exit {} (%, last epoch)", exits.join(" / ")));
    }
    head.extend((1..=exits_alone.len()).map(|k| format!("exit {k} alone")));
    blocks.push(Block::Table(head, rows));
    blocks.push(Block::Heading("Confusion matrix (last epoch)".into()));
    blocks.push(Block::Image("Row-normalised confusion matrix".into(), CONFUSION_PNG.into()));
    Ok(blocks)
}

/// ResLT runs: each branch alone and fused.
fn branches(run: &RunSources) -> Result<Vec<Block>> {
    let (summary, title) = (&run.summary, &run.title);
    let mut blocks = Vec::new();
    if let Some(bs) = &summary.last_branches {
        let mut series: Vec<(String, Accuracy)> = ["head branch", "medium branch", "tail branch"]
            .iter()
            .zip(bs)
            .map(|(n, a)| (n.to_string(), a.clone()))
            .collect();
        series.push(("fused".into(), summary.last_accuracy()));
        plots::grouped_bars(
            &series,
            &format!("{title} — ResLT branches alone and fused, last epoch"),
            &run.dir.file(BRANCHES_PNG),
        )?;
        blocks.push(Block::Heading("ResLT branches".into()));
        blocks.push(Block::Image("Each branch alone and the fused prediction, per group".into(), BRANCHES_PNG.into()));
    }

    Ok(blocks)
}

/// Runs with exits: where test and training images leave, the τ sweep and the wall clock.
fn early_exits(run: &RunSources) -> Result<Vec<Block>> {
    let (summary, dir, title, records) = (&run.summary, &run.dir, &run.title, &run.records);
    let mut blocks = Vec::new();
    if let Some(e) = &summary.early_exit {
        plots::exit_histogram(
            &e.exit_fractions_by_group,
            &format!("{title} — where test images leave (τ = {})", e.threshold),
            &dir.file(EXITS_PNG),
        )?;
        let points: Vec<(f64, f64, f64)> =
            summary.early_exit_sweep.iter().map(|r| (r.threshold, r.mean_macs / 1e6, r.overall)).collect();
        plots::accuracy_vs_macs(
            &points,
            (summary.last.overall, e.full_macs as f64 / 1e6),
            &format!("{title} — accuracy vs MACs"),
            &dir.file(EXIT_SWEEP_PNG),
        )?;
        blocks.push(Block::Heading("Early exits".into()));
        let rows: Vec<Vec<String>> = std::iter::once(e)
            .chain(summary.early_exit_sweep.iter())
            .map(|r| {
                vec![
                    r.threshold.to_string(),
                    format!("{:.2}", r.overall),
                    fmt_group(r.many),
                    fmt_group(r.medium),
                    fmt_group(r.few),
                    r.exit_fractions.iter().map(|f| format!("{:.1}", 100.0 * f)).collect::<Vec<_>>().join(" / "),
                    format!("{:.2}", r.mean_macs / 1e6),
                    format!("{:.1} %", 100.0 * r.saving),
                ]
            })
            .collect();
        blocks.push(Block::Paragraph(format!(
            "First row: the configured τ = {}; then the sweep. Full-depth accuracy (no early exit) is the table above; the network without exits costs {:.2} M MACs.",
            e.threshold,
            e.full_macs as f64 / 1e6
        )));
        blocks.push(Block::Table(
            ["τ", "overall", "many", "medium", "few", "leave at exit 1 / 2 / final (%)", "mean MMACs", "saving"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
        ));
        blocks.push(Block::Image("Share of each group leaving at each exit".into(), EXITS_PNG.into()));
        blocks.push(Block::Image("Accuracy versus mean MACs over τ".into(), EXIT_SWEEP_PNG.into()));
        if records.iter().any(|r| r.train_exit_fractions.is_some()) {
            plots::train_exit_shares(
                records,
                &format!("{title} — where training samples leave (detached decision)"),
                &dir.file(TRAIN_EXITS_PNG),
            )?;
            blocks.push(Block::Paragraph(
                "During training a sample's loss stops at the exit that classifies it correctly and confidently; \
                 the final head learns only from the samples that reach it."
                    .into(),
            ));
            blocks.push(Block::Image(
                "Share of training samples leaving at each exit, per epoch".into(),
                TRAIN_EXITS_PNG.into(),
            ));
        }
        if let Some(t) = &run.analyses.timing {
            blocks.push(Block::Heading("Early exits: wall clock".into()));
            blocks.extend(table::timing_blocks(t));
        }
    }

    Ok(blocks)
}

/// Second-stage methods and calibration (`rebalance`), when they were measured.
fn stage_two(run: &RunSources) -> Vec<Block> {
    let Some(st) = &run.analyses.stage_two else { return Vec::new() };
    let (head, rows) = st.table();
    let mut blocks = vec![
        Block::Heading("Second stage and calibration".into()),
        Block::Paragraph(format!(
            "Post-hoc and second-stage re-balancing of the weights of {} on the frozen backbone (`rebalance`, commit \
             `{}`). Each method's setting was chosen on {} validation images ({}), then scored once on the test set. \
             {}",
            st.weights,
            st.provenance.commit,
            st.validation.images,
            st.validation.source,
            crate::run::StageTwoReport::LEGEND
        )),
        Block::Table(head, rows),
    ];
    if run.dir.exists(crate::rebalance::RELIABILITY_PLOT) {
        blocks.push(Block::Image(
            "Reliability diagrams: accuracy per confidence bin, as trained and after each method".into(),
            crate::rebalance::RELIABILITY_PLOT.into(),
        ));
    }
    blocks
}
