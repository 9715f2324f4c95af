//! The trainings a table or a sweep asks for, each with a stable name: configs × `--set` values ×
//! seeds, expanded into [`PlannedRun`]s. A run's name is its directory under the runs folder, so
//! the same plan run again skips what finished and resumes what stopped, on this machine's queue
//! or as the tasks of a SLURM array (`reproduce::slurm`).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::manifest::Row;

/// One training: a config (relative to the project root), the `--set` values on top of it, and
/// the name of its run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    pub name: String,
    pub config: PathBuf,
    #[serde(default)]
    pub overrides: Vec<String>,
}

impl PlannedRun {
    /// The run a table row trains: its config as it is, named after the config's file.
    pub fn of_row(row: &Row) -> PlannedRun {
        PlannedRun { name: row.stem(), config: row.config.clone(), overrides: Vec::new() }
    }

    /// The run's summary carries the planned name (its `name` key), so `compare` tells the seeds
    /// and values of one config apart and groups the seeds.
    fn set_name(&mut self) {
        self.overrides.retain(|o| !o.starts_with("name="));
        self.overrides.push(format!("name={:?}", self.name));
    }

    pub fn run_dir(&self, runs: &Path) -> PathBuf {
        runs.join(&self.name)
    }

    /// The same run at `seed`. The config's own seed keeps the plain name, so the runs a table
    /// already has count as that seed's; any other seed is `<name>-seed<N>`.
    pub fn at_seed(&self, seed: u64, root: &Path) -> Result<PlannedRun> {
        let own = config_seed(&root.join(&self.config), &self.overrides)?;
        let mut run = self.clone();
        if seed != own {
            run.name = format!("{}-seed{seed}", self.name);
            run.overrides.push(format!("seed={seed}"));
            run.set_name();
        }
        Ok(run)
    }
}

/// The seed a config trains with once `overrides` are applied.
fn config_seed(config: &Path, overrides: &[String]) -> Result<u64> {
    Ok(crate::config::load(config, overrides)?.seed)
}

/// Every run of `runs` at every seed of `seeds`, seeds inner (a run's seeds side by side); no
/// seeds leaves the runs as they are.
pub fn with_seeds(runs: &[PlannedRun], seeds: &[u64], root: &Path) -> Result<Vec<PlannedRun>> {
    if seeds.is_empty() {
        return Ok(runs.to_vec());
    }
    let mut out = Vec::new();
    for run in runs {
        for &seed in seeds {
            out.push(run.at_seed(seed, root)?);
        }
    }
    refuse_repeated_names(&out)?;
    Ok(out)
}

/// The group a run's name belongs to among seeds: the name without its `-seed<N>`.
pub fn seed_group(name: &str) -> &str {
    match name.rsplit_once("-seed") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

fn refuse_repeated_names(runs: &[PlannedRun]) -> Result<()> {
    for (i, r) in runs.iter().enumerate() {
        if runs[..i].iter().any(|o| o.name == r.name) {
            bail!("two planned runs are both named {:?}: give them different configs, values or seeds", r.name);
        }
    }
    Ok(())
}

/// A sweep file (`configs/sweeps/*.toml`): these configs × every combination of these `--set`
/// values × these seeds.
///
/// ```toml
/// configs = ["configs/report/reslt-a0.95-r100.toml"]
/// seeds = [0, 1, 2]
/// [set]
/// "loss.alpha" = [0.9, 0.95, 0.99]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// What the sweep measures (printed, and in the docs).
    #[serde(default)]
    pub title: String,
    pub configs: Vec<PathBuf>,
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Config key → the values it takes, crossed with every other key's.
    #[serde(default)]
    pub set: toml::Table,
}

impl Sweep {
    pub fn load(path: &Path) -> Result<Sweep> {
        let text =
            crate::store::read_regular_string(path).with_context(|| format!("cannot read sweep {}", path.display()))?;
        let sweep: Sweep = toml::from_str(&text).with_context(|| format!("sweep {}", path.display()))?;
        if sweep.configs.is_empty() {
            bail!("sweep {}: `configs` is empty; name at least one config", path.display());
        }
        for (key, values) in &sweep.set {
            match values.as_array() {
                Some(v) if !v.is_empty() => {}
                _ => bail!(
                    "sweep {}: set.{key:?} must be a non-empty list of values, e.g. \"{key}\" = [0.9, 0.99]",
                    path.display()
                ),
            }
        }
        Ok(sweep)
    }

    /// The sweep's runs, named `<config stem>-<key>-<value>…[-seed<N>]` (the last part of each
    /// dotted key), every one checked to load as a config.
    pub fn expand(&self, root: &Path) -> Result<Vec<PlannedRun>> {
        let axes: Vec<(&String, &Vec<toml::Value>)> =
            self.set.iter().map(|(k, v)| (k, v.as_array().expect("checked in load"))).collect();
        let mut runs = Vec::new();
        for config in &self.configs {
            if !root.join(config).is_file() {
                bail!("sweep names config {}, which does not exist", root.join(config).display());
            }
            let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mut partial = vec![PlannedRun { name: stem, config: config.clone(), overrides: Vec::new() }];
            for (key, values) in &axes {
                let leaf = short_key(key, axes.iter().map(|(k, _)| k.as_str()));
                let mut next = Vec::new();
                for run in &partial {
                    for v in values.iter() {
                        let mut r = run.clone();
                        r.name = format!("{}-{leaf}-{}", r.name, name_part(v));
                        r.overrides.push(format!("{key}={v}"));
                        r.set_name();
                        next.push(r);
                    }
                }
                partial = next;
            }
            runs.extend(partial);
        }
        for r in &runs {
            crate::config::load(&root.join(&r.config), &r.overrides)
                .with_context(|| format!("sweep run {}", r.name))?;
        }
        let runs = with_seeds(&runs, &self.seeds, root)?;
        refuse_repeated_names(&runs)?;
        Ok(runs)
    }
}

/// `loss.alpha` → `alpha`, unless another key of the sweep ends the same way (then `loss_alpha`).
fn short_key<'a>(key: &str, all: impl Iterator<Item = &'a str>) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let clashes = all.filter(|k| k.rsplit('.').next() == Some(leaf)).count() > 1;
    if clashes {
        key.replace('.', "_")
    } else {
        leaf.to_string()
    }
}

/// A value as part of a directory name: its TOML text without quotes, with only letters, digits,
/// `.`, `_` and `-` kept (others become `_`).
fn name_part(v: &toml::Value) -> String {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("configs")).unwrap();
        let cfg = "seed = 3\n[loss]\nkind = \"ce\"\n[train]\nrecipe = \"ldam\"\n";
        std::fs::write(dir.path().join("configs/a.toml"), cfg).unwrap();
        dir
    }

    #[test]
    fn the_configs_own_seed_keeps_the_plain_name() {
        let root = project();
        let run = PlannedRun { name: "a".into(), config: "configs/a.toml".into(), overrides: vec![] };
        let runs = with_seeds(&[run], &[3, 0, 1], root.path()).unwrap();
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "a-seed0", "a-seed1"]);
        assert_eq!(runs[0].overrides, Vec::<String>::new());
        assert_eq!(runs[2].overrides, ["seed=1", "name=\"a-seed1\""]);
        assert_eq!(seed_group("a-seed1"), "a");
        assert_eq!(seed_group("a"), "a");
        assert_eq!(seed_group("model-seedling"), "model-seedling");
    }

    #[test]
    fn a_sweep_crosses_keys_values_and_seeds_with_stable_names() {
        let root = project();
        let text = "configs = [\"configs/a.toml\"]\nseeds = [3, 4]\n[set]\n\"loss.label_smoothing\" = [0.0, 0.1]\n\"train.epochs\" = [2]\n";
        std::fs::write(root.path().join("s.toml"), text).unwrap();
        let runs = Sweep::load(&root.path().join("s.toml")).unwrap().expand(root.path()).unwrap();
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a-label_smoothing-0.0-epochs-2",
                "a-label_smoothing-0.0-epochs-2-seed4",
                "a-label_smoothing-0.1-epochs-2",
                "a-label_smoothing-0.1-epochs-2-seed4"
            ]
        );
        assert_eq!(
            runs[3].overrides,
            ["loss.label_smoothing=0.1", "train.epochs=2", "seed=4", "name=\"a-label_smoothing-0.1-epochs-2-seed4\""]
        );
    }

    #[test]
    fn bad_sweeps_name_the_key() {
        let root = project();
        let write = |t: &str| {
            std::fs::write(root.path().join("s.toml"), t).unwrap();
            Sweep::load(&root.path().join("s.toml")).and_then(|s| s.expand(root.path()))
        };
        let e = write("configs = [\"configs/a.toml\"]\n[set]\n\"loss.alpha\" = 0.9\n").unwrap_err();
        assert!(format!("{e:#}").contains("loss.alpha"), "{e:#}");
        let e = write("configs = [\"configs/nope.toml\"]\n").unwrap_err();
        assert!(format!("{e:#}").contains("nope.toml"), "{e:#}");
        let e = write("configs = [\"configs/a.toml\"]\n[set]\n\"loss.no_such_key\" = [1]\n").unwrap_err();
        assert!(format!("{e:#}").contains("no_such_key"), "{e:#}");
        assert!(write("configs = []\n").is_err());
    }
}
