//! `longtail compare <run>… [--by key]`: one table and one chart across runs, and the
//! mean ± standard deviation over runs that share a setting (seeds of one config), because
//! long-tailed CIFAR numbers move by a point between seeds and one run is not a result.
//! A run is a run directory or a published result (`results/<name>.json`, whose config is
//! `results/<name>/config.toml`), so a comparison can be remade from committed evidence alone.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::document::{markdown, Block};
use super::plots;
use crate::reproduce::plan::seed_group;
use crate::run::{self, RunDir, Summary, Weights};
use crate::score::metrics::fmt_group;

/// A finished run as `compare` reads it: its summary, and where its resolved config is.
struct Compared {
    summary: Summary,
    config: PathBuf,
}

/// The finished runs `paths` name: run directories, published results, and folders of run
/// directories (a sweep's or a table's `--runs`), whose unfinished runs are left out with a line.
fn expand(paths: &[&Path]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let is_run = |d: &Path| d.join(run::CONFIG_FILE).is_file() || d.join(run::SUMMARY_FILE).is_file();
        if !p.is_dir() || is_run(p) {
            out.push(p.to_path_buf());
            continue;
        }
        let mut runs: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.is_dir() && is_run(d))
            .collect();
        runs.sort();
        let (finished, unfinished): (Vec<PathBuf>, Vec<PathBuf>) =
            runs.into_iter().partition(|d| d.join(run::SUMMARY_FILE).is_file());
        if !unfinished.is_empty() {
            let names: Vec<String> =
                unfinished.iter().filter_map(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
            eprintln!("compare: {} not finished, left out: {}", p.display(), names.join(", "));
        }
        if finished.is_empty() {
            anyhow::bail!("{} holds no finished run", p.display());
        }
        out.extend(finished);
    }
    Ok(out)
}

/// A run directory (`summary.json`, `config.toml`) or a published result file
/// (`results/<name>.json` beside `results/<name>/config.toml`).
fn load(path: &Path) -> Result<Compared> {
    if path.is_dir() {
        let dir = RunDir::new(path);
        let summary = Summary::read(&dir.file(run::SUMMARY_FILE))
            .with_context(|| format!("{} is not a finished run", path.display()))?;
        return Ok(Compared { summary, config: dir.file(run::CONFIG_FILE) });
    }
    let summary = Summary::read(path)
        .with_context(|| format!("{} is neither a run directory nor a published result", path.display()))?;
    Ok(Compared { summary, config: path.with_extension("").join(run::CONFIG_FILE) })
}

/// Look up a dotted key (e.g. `loss.alpha`) in a run's resolved config. The saved config is
/// resolved again with today's defaults, so a run trained before a key existed shows the
/// default it trained with (e.g. `loss.exit_decision = "confidence"`) instead of failing.
fn config_value(path: &Path, key: &str) -> Result<String> {
    let text = crate::store::read_regular_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cfg = crate::config::resolve(&text, &path.display().to_string(), &[])?;
    let mut cur = toml::Value::try_from(&cfg).context("config serialises")?;
    for part in key.split('.') {
        cur = cur.get(part).cloned().with_context(|| format!("{}: no key {key} (or it is unset)", path.display()))?;
    }
    Ok(match cur {
        toml::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// "mean ± std" of the values that exist; "—" when a group accuracy is missing in any run
/// (a mean over fewer runs than the row claims would mislead).
fn fmt_mean_std(values: &[Option<f64>]) -> String {
    match values.iter().copied().collect::<Option<Vec<f64>>>() {
        Some(v) if !v.is_empty() => {
            let (m, s) = mean_std(&v);
            format!("{m:.2} ± {s:.2}")
        }
        _ => "—".to_string(),
    }
}

/// The numbers one run contributes to its group's mean.
#[derive(Default)]
struct GroupRuns {
    seeds: Vec<u64>,
    best: Vec<Option<f64>>,
    last: Vec<Option<f64>>,
    many: Vec<Option<f64>>,
    medium: Vec<Option<f64>>,
    few: Vec<Option<f64>>,
    /// One list per shown [`EXTRAS`] column; `None` for a run without that number, so the
    /// group shows no mean rather than one over fewer runs.
    extras: Vec<Vec<Option<f64>>>,
}

/// Numbers only some runs have (from `eval` after training, or from exits): each is a column,
/// and a mean, when one of the compared runs has it.
type Extra = (&'static str, fn(&Summary) -> Option<f64>);
const EXTRAS: [Extra; 8] = [
    ("last, precise BN", |s| {
        s.precise_bn.as_ref().filter(|p| p.weights == Weights::Last).map(|p| p.full_depth.overall)
    }),
    ("last epochs averaged", |s| s.weight_average.as_ref().map(|p| p.full_depth.overall)),
    ("chosen on validation", |s| s.selected_on_validation.as_ref().map(|v| v.selected.overall)),
    ("early exit", |s| s.early_exit.as_ref().map(|e| e.overall)),
    ("chosen on validation, early exit", |s| {
        s.selected_on_validation.as_ref().and_then(|v| v.early_exit.as_ref()).map(|e| e.overall)
    }),
    ("ECE as trained", |s| s.stage_two.as_ref().map(|t| t.as_trained.calibration.ece)),
    ("second stage chosen on validation", |s| s.stage_two.as_ref().map(|t| t.chosen_score().full_depth.overall)),
    ("ECE after the second stage", |s| s.stage_two.as_ref().map(|t| t.chosen_score().calibration.ece)),
];

/// Markdown table of the runs (run directories or published results); writes the chart to `png`.
pub fn compare(runs: &[&Path], by: Option<&str>, png: &Path) -> Result<String> {
    let loaded = expand(runs)?.iter().map(|p| load(p)).collect::<Result<Vec<_>>>()?;
    let extras: Vec<Extra> =
        EXTRAS.into_iter().filter(|(_, of)| loaded.iter().any(|c| of(&c.summary).is_some())).collect();
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut groups: BTreeMap<String, GroupRuns> = BTreeMap::new();
    for Compared { summary: s, config } in &loaded {
        // Without --by, the seeds of one run (`<name>-seed<N>`, as `--seeds` and sweeps name them).
        let key = match by {
            Some(k) => config_value(config, k)?,
            None => seed_group(&s.name).to_string(),
        };
        let label = if by.is_none() { s.name.clone() } else { format!("{} ({}={key})", s.name, by.unwrap_or("")) };
        let group = groups
            .entry(key.clone())
            .or_insert_with(|| GroupRuns { extras: vec![Vec::new(); extras.len()], ..Default::default() });
        group.seeds.push(s.seed);
        group.best.push(Some(s.best.overall));
        group.last.push(Some(s.last.overall));
        group.many.push(s.last.many);
        group.medium.push(s.last.medium);
        group.few.push(s.last.few);
        for ((_, of), values) in extras.iter().zip(&mut group.extras) {
            values.push(of(s));
        }
        let mut row = vec![s.name.clone()];
        if by.is_some() {
            row.push(key);
        }
        row.push(s.seed.to_string());
        row.extend([
            format!("{:.2} @{}", s.best.overall, s.best.epoch),
            format!("{:.2}", s.last.overall),
            fmt_group(s.last.many),
            fmt_group(s.last.medium),
            fmt_group(s.last.few),
        ]);
        row.extend(extras.iter().map(|(_, of)| of(s).map_or("—".to_string(), |x| format!("{x:.2}"))));
        row.push(format!("{:.1}", s.wall_seconds / 60.0));
        rows.push(row);
        series.push((label, s.last_accuracy()));
    }
    let mut head = vec!["run".to_string()];
    if let Some(k) = by {
        head.push(k.to_string());
    }
    head.extend(["seed", "best (epoch)", "last", "last many", "last medium", "last few"].map(String::from));
    head.extend(extras.iter().map(|(h, _)| h.to_string()));
    head.push("wall (min)".to_string());
    plots::grouped_bars(&series, "last-epoch test accuracy per group", png)?;
    let mut blocks = vec![Block::Table(head, rows)];
    if groups.values().any(|g| g.seeds.len() > 1) {
        let over = by.map_or("the seeds of each run".to_string(), |k| format!("runs with the same {k}"));
        blocks.push(Block::Paragraph(format!("Mean ± sample standard deviation (n − 1) over {over}:")));
        blocks.push(mean_table(&groups, by, &extras));
    }
    blocks.push(Block::Image("last-epoch accuracy per group".into(), png.display().to_string()));
    Ok(markdown(&blocks))
}

/// One row per group of runs (per value of `by`, or the seeds of each run without it): mean ± sample
/// standard deviation. Runs of a group with repeated seeds are flagged, since they are not
/// independent draws.
fn mean_table(groups: &BTreeMap<String, GroupRuns>, by: Option<&str>, extras: &[Extra]) -> Block {
    let mut head = vec![by.unwrap_or("run").to_string()];
    head.extend(
        ["n", "seeds", "best overall", "last overall", "last many", "last medium", "last few"].map(String::from),
    );
    head.extend(extras.iter().map(|(h, _)| h.to_string()));
    let rows = groups
        .iter()
        .map(|(key, g)| {
            let mut seeds = g.seeds.clone();
            seeds.sort_unstable();
            let repeated = seeds.windows(2).any(|w| w[0] == w[1]);
            let seed_list = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
            let mut row = vec![
                key.clone(),
                g.seeds.len().to_string(),
                if repeated { format!("{seed_list} (repeated seed)") } else { seed_list },
                fmt_mean_std(&g.best),
                fmt_mean_std(&g.last),
                fmt_mean_std(&g.many),
                fmt_mean_std(&g.medium),
                fmt_mean_std(&g.few),
            ];
            row.extend(g.extras.iter().map(|v| fmt_mean_std(v)));
            row
        })
        .collect();
    Block::Table(head, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_standard_deviation_by_hand() {
        // mean 72; squared deviations 4 + 0 + 4 = 8; 8 / (3 − 1) = 4; √4 = 2.
        assert_eq!(mean_std(&[70.0, 72.0, 74.0]), (72.0, 2.0));
        assert_eq!(mean_std(&[71.35]), (71.35, 0.0));
        // mean 1.5; deviations² 0.25 + 0.25 = 0.5; /1 → 0.5; √0.5.
        let (m, s) = mean_std(&[1.0, 2.0]);
        assert_eq!(m, 1.5);
        assert!((s - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(fmt_mean_std(&[Some(70.0), Some(72.0), Some(74.0)]), "72.00 ± 2.00");
        assert_eq!(fmt_mean_std(&[Some(70.0), None]), "—");
    }
}
