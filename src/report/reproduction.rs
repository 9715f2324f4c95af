//! The report's comparison table with our numbers beside it, built from the manifest and
//! whatever run directories exist: a row without a finished run is marked, never filled in.
use std::path::Path;

use anyhow::{Context, Result};

use super::document::{html, markdown, Block};
use super::plots;
use crate::eval::metrics::fmt_group;
use crate::reproduce::manifest::{Manifest, Row};
use crate::reproduce::runner::{status, RunStatus};
use crate::run;

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.2}"))
}

fn groups(many: Option<f64>, medium: Option<f64>, few: Option<f64>) -> String {
    if many.is_none() && medium.is_none() && few.is_none() {
        return "—".into();
    }
    format!("{} / {} / {}", num(many), num(medium), num(few))
}

/// One rendered row plus the numbers the chart needs.
struct Line {
    cells: Vec<String>,
    chart_label: String,
    report: Option<f64>,
    /// What the chart writes where a bar is missing.
    report_note: Option<String>,
    status_note: String,
    best: Option<f64>,
    last: Option<f64>,
}

fn line(row: &Row, runs: &Path) -> Line {
    let rep = &row.reported;
    let reported = match (&rep.note, rep.overall) {
        (_, Some(v)) => format!("{v:.2}"),
        (Some(note), None) => note.clone(),
        (None, None) => "—".into(),
    };
    let mut cells = vec![row.group.clone(), row.label.clone(), row.source.clone(), reported];
    let (mut best, mut last) = (None, None);
    let mut status_note = String::new();
    match status(&row.run_dir(runs)) {
        RunStatus::Finished(s) => {
            best = Some(s.best.overall);
            last = Some(s.last.overall);
            let delta = rep.overall.map_or("—".into(), |r| format!("{:+.2}", s.best.overall - r));
            let early = s.early_exit.as_ref().map_or("—".into(), |e| {
                format!("{:.2} @τ={} ({:.1} % MACs saved)", e.overall, e.threshold, 100.0 * e.saving)
            });
            cells.extend([
                format!("{:.2} @{}", s.best.overall, s.best.epoch),
                format!("{:.2}", s.last.overall),
                delta,
                format!("{} / {} / {}", fmt_group(s.last.many), fmt_group(s.last.medium), fmt_group(s.last.few)),
                groups(rep.many, rep.medium, rep.few),
                early,
                format!("finished ({:.0} min)", s.wall_seconds / 60.0),
            ]);
        }
        other => {
            let why = match other {
                RunStatus::NotStarted => "not run".to_string(),
                RunStatus::Partial { epochs_done, epochs } => format!("incomplete: epoch {epochs_done}/{epochs}"),
                RunStatus::Failed(msg) => format!("stopped: {msg}"),
                RunStatus::Finished(_) => unreachable!(),
            };
            cells.extend(["—", "—", "—", "—"].map(String::from));
            cells.push(groups(rep.many, rep.medium, rep.few));
            cells.push("—".into());
            status_note = why.clone();
            cells.push(why);
        }
    }
    cells.push(format!("`{}`", row.config.display()));
    let chart_label = if row.group.starts_with("Published") || row.label.starts_with("Model") {
        row.label.clone()
    } else {
        format!("{} · {}", row.group.split(" (").next().unwrap_or(&row.group), row.label)
    };
    let report_note = rep.overall.is_none().then(|| rep.note.clone().unwrap_or_else(|| "no number".into()));
    Line { cells, chart_label, report: rep.overall, report_note, status_note, best, last }
}

/// File names written into the runs folder.
pub const TABLE_MD: &str = "report-table.md";
pub const TABLE_HTML: &str = "report-table.html";
pub const TABLE_PNG: &str = "report-table.png";

/// Render the table from the run directories in `runs` into `runs/report-table.{md,html,png}`;
/// returns the markdown.
pub fn render(manifest: &Manifest, rows: &[Row], runs: &Path) -> Result<String> {
    std::fs::create_dir_all(runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let png = runs.join(TABLE_PNG);
    let lines: Vec<Line> = rows.iter().map(|r| line(r, runs)).collect();
    let head = [
        "section",
        "row",
        "source",
        "reported",
        "ours best (epoch)",
        "ours last",
        "Δ best − reported",
        "ours many / medium / few (last)",
        "reported many / medium / few",
        "early exit (acc, MACs saved)",
        "status",
        "config",
    ]
    .map(String::from)
    .to_vec();
    let finished = lines.iter().filter(|l| l.best.is_some()).count();
    let bars: Vec<plots::HBarRow> = lines
        .iter()
        .map(|l| plots::HBarRow {
            label: l.chart_label.clone(),
            values: vec![l.report, l.best, l.last],
            notes: vec![l.report_note.clone(), Some(l.status_note.clone()), None],
        })
        .collect();
    let series = [("reported", plots::OVERALL), ("ours, best epoch", plots::MANY), ("ours, last epoch", plots::MEDIUM)];
    plots::horizontal_bars(&bars, &series, "overall test accuracy (%)", &manifest.title, &png)?;
    let blocks = [
        Block::Heading(manifest.title.clone()),
        Block::Paragraph(format!(
            "{finished} of {} rows have a finished run (run directories under `{}`). Many / Medium / Few \
             follow each run's group rule (CIFAR-10: classes 0–2 / 3–5 / 6–9). \"Δ\" compares our best epoch with \
             the reported number, which the sources report as best-epoch accuracy.",
            lines.len(),
            runs.display()
        )),
        Block::Table(head, lines.into_iter().map(|l| l.cells).collect()),
        Block::Image("reported vs ours".into(), TABLE_PNG.into()),
    ];
    let md = markdown(&blocks);
    run::atomic_write(&runs.join(TABLE_MD), md.as_bytes())?;
    run::atomic_write(&runs.join(TABLE_HTML), html(&manifest.title, &blocks, runs)?.as_bytes())?;
    Ok(md)
}
