//! The report's comparison table as data: which rows it has, the numbers it printed, and the
//! config that reproduces each row (`configs/report/table.toml`).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Numbers a paper or report printed for one row (any of them may be missing).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reported {
    pub overall: Option<f64>,
    pub many: Option<f64>,
    pub medium: Option<f64>,
    pub few: Option<f64>,
    /// What the source said instead of a number (e.g. "crashed").
    pub note: Option<String>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Section of the table (e.g. "Routed hybrids").
    pub group: String,
    /// The row's name as the report prints it (e.g. "Model 8").
    pub label: String,
    /// Config that reproduces it, relative to the manifest's project root.
    pub config: PathBuf,
    /// Where the number comes from (e.g. "REPORT.txt", "ResLT paper").
    pub source: String,
    #[serde(default)]
    pub reported: Reported,
    /// Where our number lands more than a point from the reported one: one sentence on why,
    /// measured where that was cheap. The table prints it under the rows.
    pub finding: Option<String>,
}

impl Row {
    /// The run directory of this row under `runs`: one per config, named after its file stem,
    /// so two rows quoting the same config share one run.
    pub fn run_dir(&self, runs: &Path) -> PathBuf {
        runs.join(self.stem())
    }

    pub fn stem(&self) -> String {
        self.config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// One system of the headline table: for each imbalance of `Manifest::HEADLINE_RHOS`, the row
/// (by label) whose reported number is the paper's, the one whose reported number is the
/// report's, and the one whose run is ours. An empty string leaves that cell empty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadlineSystem {
    pub system: String,
    #[serde(default)]
    pub paper: Vec<String>,
    #[serde(default)]
    pub report: Vec<String>,
    pub ours: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub title: String,
    #[serde(rename = "row")]
    pub rows: Vec<Row>,
    /// The short table of the README: systems across the imbalances, paper / report / ours.
    #[serde(default, rename = "headline")]
    pub headline: Vec<HeadlineSystem>,
    /// Folder the config paths are relative to (the manifest's project root).
    #[serde(skip)]
    pub root: PathBuf,
}

impl Manifest {
    /// Read a manifest; config paths are resolved against `root` and must exist.
    pub fn load(path: &Path, root: &Path) -> Result<Manifest> {
        let text = crate::store::read_regular_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let mut m: Manifest = toml::from_str(&text).with_context(|| format!("manifest {}", path.display()))?;
        m.root = root.to_path_buf();
        m.check_headline().with_context(|| format!("manifest {}", path.display()))?;
        for (i, r) in m.rows.iter().enumerate() {
            if !root.join(&r.config).is_file() {
                bail!(
                    "manifest {}: row {} ({:?}) names config {}, which does not exist",
                    path.display(),
                    i + 1,
                    r.label,
                    root.join(&r.config).display()
                );
            }
        }
        Ok(m)
    }

    /// The imbalances the headline table's columns stand for, in order.
    pub const HEADLINE_RHOS: [u32; 3] = [100, 50, 10];

    /// The row a headline cell names: its label must match exactly one row.
    pub fn row_labelled(&self, label: &str) -> Result<&Row> {
        let mut found = self.rows.iter().filter(|r| r.label == label);
        match (found.next(), found.next()) {
            (Some(r), None) => Ok(r),
            (None, _) => bail!("headline names row {label:?}, which is not a row label"),
            (Some(_), Some(_)) => bail!("headline names row {label:?}, a label several rows have"),
        }
    }

    fn check_headline(&self) -> Result<()> {
        for h in &self.headline {
            for (key, labels) in [("paper", &h.paper), ("report", &h.report), ("ours", &h.ours)] {
                if !labels.is_empty() && labels.len() != Self::HEADLINE_RHOS.len() {
                    bail!(
                        "headline {:?}: {key} has {} entries; give one per imbalance ({:?}), \"\" for none",
                        h.system,
                        labels.len(),
                        Self::HEADLINE_RHOS
                    );
                }
                for l in labels.iter().filter(|l| !l.is_empty()) {
                    self.row_labelled(l).with_context(|| format!("headline {:?}, {key}", h.system))?;
                }
            }
        }
        Ok(())
    }

    /// Rows whose config stem or label is in `only` (all rows when `only` is empty). Unknown
    /// names are an error listing the valid ones.
    pub fn select(&self, only: &[String]) -> Result<Vec<Row>> {
        if only.is_empty() {
            return Ok(self.rows.clone());
        }
        for name in only {
            if !self.rows.iter().any(|r| &r.stem() == name || &r.label == name) {
                let mut stems: Vec<String> = self.rows.iter().map(|r| r.stem()).collect();
                stems.dedup();
                bail!("--only {name:?} matches no row; rows are: {}", stems.join(", "));
            }
        }
        Ok(self.rows.iter().filter(|r| only.iter().any(|n| n == &r.stem() || n == &r.label)).cloned().collect())
    }

    /// The rows `select(only)` gives, in the order `only` names them (the table's order when
    /// `only` is empty): the order in which `reproduce --only a,b` trains them.
    pub fn in_given_order(&self, only: &[String]) -> Result<Vec<Row>> {
        let rows = self.select(only)?;
        if only.is_empty() {
            return Ok(rows);
        }
        let rank = |r: &Row| only.iter().position(|n| n == &r.stem() || n == &r.label).unwrap_or(usize::MAX);
        let mut ordered = rows;
        ordered.sort_by_key(rank); // stable: rows one name matches keep the table's order
        Ok(ordered)
    }

    /// Distinct configs of `rows`, in first-seen order (each is trained once).
    pub fn distinct_configs(rows: &[Row]) -> Vec<Row> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for r in rows {
            if !seen.contains(&r.config) {
                seen.push(r.config.clone());
                out.push(r.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const TWO_ROWS: &str = r#"
title = "t"
[[row]]
group = "g"
label = "Model 8"
config = "a.toml"
source = "REPORT.txt"
reported = { overall = 79.59, many = 90.4 }
[[row]]
group = "g"
label = "Model 4"
config = "b.toml"
source = "REPORT.txt"
reported = { note = "crashed" }
[[row]]
group = "h"
label = "Model 8 again"
config = "a.toml"
source = "elsewhere"
"#;

    /// TWO_ROWS loaded from a folder that has its two configs (the folder lives as long as the
    /// returned guard).
    fn two_configs_manifest() -> (tempfile::TempDir, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "");
        write(dir.path(), "b.toml", "");
        let m = Manifest::load(&write(dir.path(), "m.toml", TWO_ROWS), dir.path()).unwrap();
        (dir, m)
    }

    #[test]
    fn loads_selects_and_dedupes() {
        let (_dir, m) = two_configs_manifest();
        assert_eq!(m.rows.len(), 3);
        assert_eq!(m.rows[0].reported.overall, Some(79.59));
        assert_eq!(m.rows[1].reported.note.as_deref(), Some("crashed"));
        assert_eq!(Manifest::distinct_configs(&m.rows).len(), 2);
        assert_eq!(m.select(&["b".into()]).unwrap().len(), 1);
        assert_eq!(m.select(&["Model 8".into()]).unwrap()[0].stem(), "a");
        let err = m.select(&["model-99".into()]).unwrap_err().to_string();
        assert!(err.contains("model-99") && err.contains("a, b"), "{err}");
    }

    #[test]
    fn training_follows_the_order_only_gives() {
        let (_dir, m) = two_configs_manifest();
        let stems = |rows: Vec<Row>| rows.iter().map(Row::stem).collect::<Vec<_>>();
        // select keeps the table's order; in_given_order follows --only.
        assert_eq!(stems(m.select(&["b".into(), "a".into()]).unwrap()), ["a", "b", "a"]);
        assert_eq!(stems(m.in_given_order(&["b".into(), "a".into()]).unwrap()), ["b", "a", "a"]);
        let configs = Manifest::distinct_configs(&m.in_given_order(&["b".into(), "a".into()]).unwrap());
        assert_eq!(stems(configs), ["b", "a"]);
        assert_eq!(stems(m.in_given_order(&[]).unwrap()), ["a", "b", "a"]);
        assert!(m.in_given_order(&["nope".into()]).is_err());
    }

    #[test]
    fn missing_config_and_unknown_key_are_named() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "");
        let err = Manifest::load(&write(dir.path(), "m.toml", TWO_ROWS), dir.path()).unwrap_err().to_string();
        assert!(err.contains("row 2") && err.contains("b.toml"), "{err}");
        let bad = TWO_ROWS.replace("source = \"elsewhere\"", "source = \"x\"\nsauce = 1");
        write(dir.path(), "b.toml", "");
        let err = format!("{:#}", Manifest::load(&write(dir.path(), "m2.toml", &bad), dir.path()).unwrap_err());
        assert!(err.contains("m2.toml") && err.contains("sauce"), "{err}");
    }
}
