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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub title: String,
    #[serde(rename = "row")]
    pub rows: Vec<Row>,
    /// Folder the config paths are relative to (the manifest's project root).
    #[serde(skip)]
    pub root: PathBuf,
}

impl Manifest {
    /// Read a manifest; config paths are resolved against `root` and must exist.
    pub fn load(path: &Path, root: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
        let mut m: Manifest = toml::from_str(&text).with_context(|| format!("manifest {}", path.display()))?;
        m.root = root.to_path_buf();
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

    #[test]
    fn loads_selects_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "");
        write(dir.path(), "b.toml", "");
        let m = Manifest::load(&write(dir.path(), "m.toml", TWO_ROWS), dir.path()).unwrap();
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
