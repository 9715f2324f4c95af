//! `longtail compare <run-dir>… [--by key]`: one table and one chart across runs.
use std::path::Path;

use anyhow::{Context, Result};

use super::document::{markdown, Block};
use super::plots;
use crate::eval::metrics::fmt_group;
use crate::run::{self, RunDir, Summary};

/// Look up a dotted key (e.g. `loss.alpha`) in a run's resolved config.
fn config_value(dir: &RunDir, key: &str) -> Result<String> {
    let path = dir.file(run::CONFIG_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut cur = toml::Value::Table(table);
    for part in key.split('.') {
        cur = cur.get(part).cloned().with_context(|| format!("{}: no key {key}", path.display()))?;
    }
    Ok(match cur {
        toml::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Markdown table of the runs; writes the chart to `png`.
pub fn compare(run_dirs: &[&Path], by: Option<&str>, png: &Path) -> Result<String> {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for d in run_dirs {
        let dir = RunDir::new(*d);
        let s: Summary = run::read_json(&dir.file(run::SUMMARY_FILE))
            .with_context(|| format!("{} is not a finished run", d.display()))?;
        let key = match by {
            Some(k) => config_value(&dir, k)?,
            None => String::new(),
        };
        let label = if key.is_empty() { s.name.clone() } else { format!("{} ({}={key})", s.name, by.unwrap_or("")) };
        let mut row = vec![s.name.clone()];
        if by.is_some() {
            row.push(key);
        }
        row.extend([
            format!("{:.2} @{}", s.best.overall, s.best.epoch),
            format!("{:.2}", s.last.overall),
            fmt_group(s.last.many),
            fmt_group(s.last.medium),
            fmt_group(s.last.few),
            format!("{:.1}", s.wall_seconds / 60.0),
        ]);
        rows.push(row);
        series.push((label, s.last_accuracy()));
    }
    let mut head = vec!["run".to_string()];
    if let Some(k) = by {
        head.push(k.to_string());
    }
    head.extend(["best (epoch)", "last", "last many", "last medium", "last few", "wall (min)"].map(String::from));
    plots::grouped_bars(&series, "last-epoch test accuracy per group", png)?;
    Ok(markdown(&[
        Block::Table(head, rows),
        Block::Image("last-epoch accuracy per group".into(), png.display().to_string()),
    ]))
}
