//! The report's comparison table with our numbers beside it, built from the manifest and either
//! the run directories of one machine or the published `results/*.json` of the repository (so a
//! fresh clone re-renders the committed table). A row without a finished run is marked, never
//! filled in.
use std::path::Path;

use anyhow::{Context, Result};

use super::document::{html, markdown, Block};
use super::plots;
use crate::reproduce::manifest::{HeadlineSystem, Manifest, Row};
use crate::reproduce::plan::seed_group;
use crate::run::{status, RunStatus, Summary};
use crate::score::metrics::fmt_group;
use crate::store;

/// Where the table's numbers come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// One run directory per config under this folder (`reproduce`'s `--runs`).
    Runs(&'a Path),
    /// One published result per config, `<folder>/<config stem>.json` (`longtail publish`).
    Results(&'a Path),
}

impl Source<'_> {
    fn folder(&self) -> &Path {
        match self {
            Source::Runs(p) | Source::Results(p) => p,
        }
    }

    /// The finished run of `row`, or what to print instead of its numbers.
    fn outcome(&self, row: &Row) -> Result<Result<Box<Summary>, String>> {
        match self {
            Source::Runs(runs) => Ok(match status(&row.run_dir(runs)) {
                Ok(RunStatus::Finished(s)) => Ok(s),
                Ok(RunStatus::NotStarted) => Err("not run".into()),
                Ok(RunStatus::Partial { epochs_done, epochs }) => {
                    Err(format!("incomplete: epoch {epochs_done}/{epochs}"))
                }
                Ok(RunStatus::Failed(msg)) => Err(format!("stopped: {msg}")),
                // A row whose run does not read says so, and why, instead of hiding the table.
                Err(e) => Err(format!("unreadable: {e:#}")),
            }),
            Source::Results(dir) => {
                let path = dir.join(format!("{}.json", row.stem()));
                if !path.exists() {
                    return Ok(Err("not published".into()));
                }
                // A published result that does not read is an error, not an empty row.
                let s = Summary::read(&path).with_context(|| format!("row {:?}", row.label))?;
                Ok(Ok(Box::new(s)))
            }
        }
    }
}

impl Source<'_> {
    /// Seed and best-epoch accuracy of every finished seed of `row`: its own run and the
    /// `<stem>-seed<N>` runs (or results) beside it that `reproduce report --seeds` trains.
    fn seeds(&self, row: &Row) -> Result<Vec<(u64, f64)>> {
        let stem = row.stem();
        let folder = self.folder();
        let Ok(entries) = std::fs::read_dir(folder) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            let name = match self {
                Source::Runs(_) => e.file_name().to_string_lossy().into_owned(),
                Source::Results(_) if path.extension().is_some_and(|x| x == "json") => {
                    path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                }
                Source::Results(_) => continue,
            };
            if seed_group(&name) != stem {
                continue;
            }
            let summary = match self {
                Source::Runs(_) => match status(&path) {
                    Ok(RunStatus::Finished(s)) => Some(*s),
                    _ => None,
                },
                Source::Results(_) => Some(Summary::read(&path).with_context(|| format!("row {:?}", row.label))?),
            };
            out.extend(summary.map(|s| (s.seed, s.best.overall)));
        }
        out.sort_by_key(|&(seed, _)| seed);
        Ok(out)
    }
}

/// "80.10 ± 0.42 (seeds 0, 1, 2)" where a row has two finished seeds or more.
fn over_seeds(seeds: &[(u64, f64)]) -> Option<String> {
    if seeds.len() < 2 {
        return None;
    }
    let values: Vec<f64> = seeds.iter().map(|&(_, v)| v).collect();
    let (m, sd) = crate::report::compare::mean_std(&values);
    let list = seeds.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>().join(", ");
    Some(format!("{m:.2} ± {sd:.2} (seeds {list})"))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.2}"))
}

fn groups(many: Option<f64>, medium: Option<f64>, few: Option<f64>) -> String {
    if many.is_none() && medium.is_none() && few.is_none() {
        return "—".into();
    }
    format!("{} / {} / {}", num(many), num(medium), num(few))
}

/// A gap between ours (best epoch) and the reported number that the table must explain.
const EXPLAIN_ABOVE: f64 = 1.0;

/// One rendered row plus the numbers the chart and the notes need.
struct Line {
    cells: Vec<String>,
    chart_label: String,
    report: Option<f64>,
    /// What the chart writes where a bar is missing.
    report_note: Option<String>,
    status_note: String,
    best: Option<f64>,
    last: Option<f64>,
    /// `best − reported` where both exist.
    delta: Option<f64>,
}

const HEAD: [&str; 14] = [
    "section",
    "row",
    "source",
    "reported",
    "ours best (epoch)",
    "ours last",
    "ours chosen on validation (epoch)",
    "Δ best − reported",
    "ours many / medium / few (last)",
    "reported many / medium / few",
    "early exit (acc, MACs saved)",
    "precision",
    "status",
    "config",
];

/// The cells after "reported" of a row with a finished run.
fn finished_cells(s: &Summary, reported: Option<f64>, reported_groups: String) -> Vec<String> {
    let delta = reported.map_or("—".into(), |r| format!("{:+.2}", s.best.overall - r));
    let early = s.early_exit.as_ref().map_or("—".into(), |e| {
        format!("{:.2} @τ={} ({:.1} % MACs saved)", e.overall, e.threshold, 100.0 * e.saving)
    });
    let chosen = s
        .selected_on_validation
        .as_ref()
        .map_or("—".into(), |v| format!("{:.2} @{}", v.selected.overall, v.selected.epoch));
    vec![
        format!("{:.2} @{}", s.best.overall, s.best.epoch),
        format!("{:.2}", s.last.overall),
        chosen,
        delta,
        format!("{} / {} / {}", fmt_group(s.last.many), fmt_group(s.last.medium), fmt_group(s.last.few)),
        reported_groups,
        early,
        s.precision.name().to_string(),
        format!("finished ({:.0} min)", s.wall_seconds / 60.0),
    ]
}

fn line(row: &Row, source: Source) -> Result<Line> {
    let rep = &row.reported;
    let reported = match (&rep.note, rep.overall) {
        (_, Some(v)) => format!("{v:.2}"),
        (Some(note), None) => note.clone(),
        (None, None) => "—".into(),
    };
    let mut cells = vec![row.group.clone(), row.label.clone(), row.source.clone(), reported];
    let (mut best, mut last, mut delta) = (None, None, None);
    let mut status_note = String::new();
    let reported_groups = groups(rep.many, rep.medium, rep.few);
    match source.outcome(row)? {
        Ok(s) => {
            best = Some(s.best.overall);
            last = Some(s.last.overall);
            delta = rep.overall.map(|r| s.best.overall - r);
            cells.extend(finished_cells(&s, rep.overall, reported_groups));
        }
        Err(why) => {
            cells.extend(["—", "—", "—", "—", "—"].map(String::from));
            cells.extend([reported_groups, "—".into(), "—".into(), why.clone()]);
            status_note = why;
        }
    }
    cells.push(format!("`{}`", row.config.display()));
    let chart_label = if row.group.starts_with("Published") || row.label.starts_with("Model") {
        row.label.clone()
    } else {
        format!("{} · {}", row.group.split(" (").next().unwrap_or(&row.group), row.label)
    };
    let report_note = rep.overall.is_none().then(|| rep.note.clone().unwrap_or_else(|| "no number".into()));
    Ok(Line { cells, chart_label, report: rep.overall, report_note, status_note, best, last, delta })
}

/// File names written beside the numbers' source.
pub const TABLE_MD: &str = "report-table.md";
pub const TABLE_HTML: &str = "report-table.html";
pub const TABLE_PNG: &str = "report-table.png";
/// The README's short table (markdown only), rendered from the same numbers.
pub const HEADLINE_MD: &str = "report-headline.md";

/// Render the table from `source` into its folder (`report-table.{md,html,png}`, and
/// `report-headline.md` when the manifest has a headline); returns the markdown.
pub fn render(manifest: &Manifest, rows: &[Row], source: Source) -> Result<String> {
    let folder = source.folder();
    std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let png = folder.join(TABLE_PNG);
    let lines: Vec<Line> = rows.iter().map(|r| line(r, source)).collect::<Result<_>>()?;
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
    let from = match source {
        Source::Runs(p) => format!("a finished run (run directories under `{}`)", p.display()),
        Source::Results(p) => format!(
            "a published result (`{}/<config>.json`; re-render with `longtail reproduce report --table-only --results {}`)",
            p.display(),
            p.display()
        ),
    };
    let mut blocks = vec![
        Block::Heading(manifest.title.clone()),
        Block::Paragraph(format!(
            "{finished} of {} rows have {from}. Many / Medium / Few follow each run's group rule (CIFAR-10: classes \
             0–2 / 3–5 / 6–9, at every ρ). \"Δ\" compares our best epoch with the reported number, which the \
             sources report as best-epoch accuracy; \"chosen on validation\" is the epoch `longtail select` chose on \
             training images the subset leaves out, scored once on the test set.",
            rows.len()
        )),
    ];
    let notes = findings(rows, &lines);
    let mut head = HEAD.map(String::from).to_vec();
    let mut cells: Vec<Vec<String>> = lines.into_iter().map(|l| l.cells).collect();
    // Only a table with seeds gets the column (mean ± sample std of the best epochs).
    let seeds: Vec<Option<String>> =
        rows.iter().map(|r| source.seeds(r).map(|s| over_seeds(&s))).collect::<Result<_>>()?;
    if seeds.iter().any(Option::is_some) {
        head.push("ours best over seeds (mean ± std)".into());
        for (row, cell) in cells.iter_mut().zip(seeds) {
            row.push(cell.unwrap_or_else(|| "—".into()));
        }
    }
    blocks.push(Block::Table(head, cells));
    if !notes.is_empty() {
        blocks.push(Block::Paragraph(format!(
            "Rows more than {EXPLAIN_ABOVE} point from the reported number, and why:\n\n{}",
            notes.join("\n")
        )));
    }
    blocks.push(Block::Image("reported vs ours".into(), TABLE_PNG.into()));
    let md = markdown(&blocks);
    store::atomic_write(&folder.join(TABLE_MD), md.as_bytes())?;
    store::atomic_write(&folder.join(TABLE_HTML), html(&manifest.title, &blocks, folder)?.as_bytes())?;
    if !manifest.headline.is_empty() {
        let headline = headline(manifest, source)?;
        store::atomic_write(&folder.join(HEADLINE_MD), headline.as_bytes())?;
    }
    Ok(md)
}

/// One list item per row whose gap exceeds [`EXPLAIN_ABOVE`]: the manifest's finding, or a plain
/// statement that none is recorded.
fn findings(rows: &[Row], lines: &[Line]) -> Vec<String> {
    rows.iter()
        .zip(lines)
        .filter_map(|(row, l)| {
            let d = l.delta.filter(|d| d.abs() > EXPLAIN_ABOVE)?;
            let why = row.finding.as_deref().unwrap_or("no measured explanation recorded yet.");
            Some(format!("- **{} · {}** ({d:+.2}): {why}", row.group, row.label))
        })
        .collect()
}

/// The README's table: each system across ρ = 100 / 50 / 10, the paper's number, the report's and
/// ours (best epoch, as the sources report; the full table has the last and validation-chosen
/// epochs).
pub fn headline(manifest: &Manifest, source: Source) -> Result<String> {
    let rhos = Manifest::HEADLINE_RHOS;
    let mut head = vec!["system".to_string()];
    for rho in rhos {
        head.extend(["paper", "report", "ours"].map(|w| format!("ρ={rho} {w}")));
    }
    let mut body = Vec::new();
    for h in &manifest.headline {
        body.push(headline_cells(manifest, h, source)?);
    }
    let table = markdown(&[Block::Table(head, body)]);
    Ok(format!(
        "{table}Overall test accuracy (%) on CIFAR-10-LT. Ours: the best epoch, as the papers and the report \
         print theirs; \"…\" not trained yet. Every number of ours is a `results/*.json`; \
         `results/report-table.md` has the last epoch, the epoch chosen on validation and Many / Medium / Few.\n"
    ))
}

fn headline_cells(manifest: &Manifest, h: &HeadlineSystem, source: Source) -> Result<Vec<String>> {
    let label_at = |labels: &[String], i: usize| labels.get(i).filter(|l| !l.is_empty()).cloned();
    let mut cells = vec![h.system.clone()];
    for i in 0..Manifest::HEADLINE_RHOS.len() {
        for labels in [&h.paper, &h.report] {
            let reported = match label_at(labels, i) {
                Some(l) => manifest.row_labelled(&l)?.reported.overall,
                None => None,
            };
            cells.push(reported.map_or("—".into(), |v| format!("{v:.2}")));
        }
        cells.push(match label_at(&h.ours, i) {
            Some(l) => match source.outcome(manifest.row_labelled(&l)?)? {
                Ok(s) => format!("**{:.2}**", s.best.overall),
                Err(_) => "…".into(),
            },
            None => "—".into(),
        });
    }
    Ok(cells)
}
