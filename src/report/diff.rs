//! `longtail diff`: are two runs the same run? Compared by content, not by bytes: the resolved
//! configs key by key, `metrics.jsonl` epoch by epoch (every number except wall-clock fields), and
//! every weights file both have tensor by tensor. A `.ot` archive's bytes can differ while its
//! tensors are equal (the order of entries is not fixed), so `cmp` cannot answer this.
//!
//! What it is for: checking that a resumed or replayed run is the run it claims to be, that a
//! fork's history is its parent's, or where two seeds part.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tch::{Kind, Tensor};

use crate::config;
use crate::run::{self, RunDir};
use crate::train::fork::config_changes;

/// Fields of an epoch record that measure the machine, not the run.
const WALL_CLOCK: [&str; 3] = ["images_per_second", "seconds", "data_wait_seconds"];

/// The metrics of two runs, epoch by epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsDiff {
    /// Epochs both runs have.
    pub common: Vec<usize>,
    /// Epochs of the common ones whose records differ.
    pub differing: Vec<usize>,
    /// At the first differing epoch: each differing field with both values.
    pub first: Vec<(String, String, String)>,
    /// Epochs only one run has (the shorter run is not different, only shorter).
    pub only_a: usize,
    pub only_b: usize,
}

/// One weights file of both runs (or two files given directly).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsDiff {
    pub name: String,
    pub tensors: usize,
    /// Tensors that differ, with their largest absolute difference (None: shape or kind differs).
    pub differing: Vec<(String, Option<f64>)>,
    /// Tensor names only one file has.
    pub unmatched: Vec<String>,
}

impl WeightsDiff {
    pub fn same(&self) -> bool {
        self.differing.is_empty() && self.unmatched.is_empty()
    }
}

/// Everything `diff` compared.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDiff {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Resolved config keys that differ (`name` and `device` are not compared).
    pub config: Vec<(String, String, String)>,
    pub metrics: Option<MetricsDiff>,
    pub weights: Vec<WeightsDiff>,
    /// Weights files only one run has.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    /// `best.ot` was not compared: it is the best *so far*, so two runs at different epochs may
    /// rightly have different ones.
    pub best_skipped: bool,
}

impl RunDiff {
    /// Whether everything both runs have is equal.
    pub fn same(&self) -> bool {
        self.config.is_empty()
            && self.metrics.as_ref().is_none_or(|m| m.differing.is_empty())
            && self.weights.iter().all(WeightsDiff::same)
    }

    pub fn render(&self) -> String {
        let mut s = format!("A: {}\nB: {}\n", self.a.display(), self.b.display());
        if !self.config.is_empty() || self.metrics.is_some() {
            if self.config.is_empty() {
                s.push_str("config: the same\n");
            } else {
                s.push_str(&format!("config: {} key(s) differ\n", self.config.len()));
                for (key, a, b) in &self.config {
                    s.push_str(&format!("  {key}: {a} | {b}\n"));
                }
            }
        }
        if let Some(m) = &self.metrics {
            s.push_str(&render_metrics(m));
        }
        // Kept weights (one file per epoch) are summed up in one line unless they differ.
        let (kept, files): (Vec<&WeightsDiff>, Vec<&WeightsDiff>) =
            self.weights.iter().partition(|w| kept_file(&w.name).is_some());
        for w in files {
            s.push_str(&render_weights(w));
        }
        if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
            let differing: Vec<&&WeightsDiff> = kept.iter().filter(|w| !w.same()).collect();
            s.push_str(&format!(
                "{}: {} kept epochs ({} … {}), {}\n",
                run::KEPT_WEIGHTS_DIR,
                kept.len(),
                kept_file(&first.name).unwrap_or_default(),
                kept_file(&last.name).unwrap_or_default(),
                if differing.is_empty() { "all equal".to_string() } else { format!("{} differ:", differing.len()) }
            ));
            for w in differing.iter().take(5) {
                s.push_str(&format!("  {}", render_weights(w)));
            }
            if differing.len() > 5 {
                s.push_str(&format!("  … and {} more\n", differing.len() - 5));
            }
        }
        for (which, names) in [("A", &self.only_a), ("B", &self.only_b)] {
            if !names.is_empty() {
                s.push_str(&format!("not compared, only in {which}: {}\n", name_list(names)));
            }
        }
        if self.best_skipped {
            s.push_str(&format!(
                "{} not compared: the runs are at different epochs, and it is each one's best so far\n",
                run::BEST_WEIGHTS
            ));
        }
        let shorter = self.metrics.as_ref().is_some_and(|m| m.only_a + m.only_b > 0);
        s.push_str(match (self.same(), shorter) {
            (true, false) => "the same: every number compared is equal\n",
            (true, true) => "the same as far as both go: every number compared is equal; one run has more epochs\n",
            (false, _) => "different\n",
        });
        s
    }
}

fn render_metrics(m: &MetricsDiff) -> String {
    let span = match (m.common.first(), m.common.last()) {
        (Some(f), Some(l)) => format!("{} epochs in common ({f}–{l})", m.common.len()),
        _ => "no epoch in common".to_string(),
    };
    let mut s = format!("{}: {span}", run::METRICS_FILE);
    if m.differing.is_empty() {
        s.push_str(", all equal (wall-clock fields aside)");
    } else {
        s.push_str(&format!(", {} differ; the first is epoch {}:", m.differing.len(), m.differing[0]));
    }
    if m.only_a + m.only_b > 0 {
        s.push_str(&format!(" ({} more in A, {} more in B)", m.only_a, m.only_b));
    }
    s.push('\n');
    for (field, a, b) in &m.first {
        s.push_str(&format!("  {field}: {a} | {b}\n"));
    }
    s
}

fn render_weights(w: &WeightsDiff) -> String {
    if w.same() {
        return format!("{}: {} tensors, all equal\n", w.name, w.tensors);
    }
    let mut s = format!("{}: {} tensors, {} differ", w.name, w.tensors, w.differing.len());
    if let Some(max) = w.differing.iter().filter_map(|(_, d)| *d).reduce(f64::max) {
        s.push_str(&format!(" (largest |Δ| {max:.3e})"));
    }
    let shown: Vec<String> = w
        .differing
        .iter()
        .take(5)
        .map(|(n, d)| if d.is_some() { n.clone() } else { format!("{n} (shape or kind)") })
        .collect();
    if !shown.is_empty() {
        s.push_str(&format!(": {}{}", shown.join(", "), if w.differing.len() > 5 { ", …" } else { "" }));
    }
    if !w.unmatched.is_empty() {
        s.push_str(&format!("; in one file only: {}", w.unmatched.join(", ")));
    }
    s.push('\n');
    s
}

/// Compare two run directories, or two weights files.
pub fn diff(a: &Path, b: &Path) -> Result<RunDiff> {
    for p in [a, b] {
        if !p.is_file() && !RunDir::new(p).exists(run::CONFIG_FILE) {
            bail!("{} is neither a run directory (no {}) nor a weights file", p.display(), run::CONFIG_FILE);
        }
    }
    match (a.is_file(), b.is_file()) {
        (true, true) => {
            let w = weights_file(a, b, &format!("{} | {}", a.display(), b.display()))?;
            return Ok(RunDiff {
                a: a.into(),
                b: b.into(),
                config: Vec::new(),
                metrics: None,
                weights: vec![w],
                only_a: Vec::new(),
                only_b: Vec::new(),
                best_skipped: false,
            });
        }
        (false, false) => {}
        _ => bail!("compare two run directories or two weights files, not one of each"),
    }
    let (da, db) = (RunDir::new(a), RunDir::new(b));
    // A summary that no longer matches its checksum makes the run not the one it claims to be:
    // an error naming the file, before any comparison says "the same".
    for d in [&da, &db] {
        if d.exists(run::SUMMARY_FILE) {
            crate::run::Summary::read(&d.file(run::SUMMARY_FILE))?;
        }
    }
    let config = config_changes(
        &config::load(&da.file(run::CONFIG_FILE), &[])?,
        &config::load(&db.file(run::CONFIG_FILE), &[])?,
    );
    let metrics = match (da.exists(run::METRICS_FILE), db.exists(run::METRICS_FILE)) {
        (true, true) => {
            Some(metrics(&read_records(&da.file(run::METRICS_FILE))?, &read_records(&db.file(run::METRICS_FILE))?))
        }
        _ => None,
    };
    let (mut fa, mut fb) = (weights_files(a)?, weights_files(b)?);
    let best_skipped = metrics.as_ref().is_some_and(|m| m.only_a + m.only_b > 0)
        && fa.contains(run::BEST_WEIGHTS)
        && fb.contains(run::BEST_WEIGHTS);
    if best_skipped {
        fa.remove(run::BEST_WEIGHTS);
        fb.remove(run::BEST_WEIGHTS);
    }
    let mut weights = Vec::new();
    for name in fa.intersection(&fb) {
        weights.push(weights_file(&a.join(name), &b.join(name), name)?);
    }
    Ok(RunDiff {
        a: a.into(),
        b: b.into(),
        config,
        metrics,
        weights,
        only_a: fa.difference(&fb).cloned().collect(),
        only_b: fb.difference(&fa).cloned().collect(),
        best_skipped,
    })
}

/// For a kept epoch's weights (`weights/epoch-EEEE.ot`), the file name inside the folder.
fn kept_file(name: &str) -> Option<&str> {
    name.strip_prefix(run::KEPT_WEIGHTS_DIR)?.strip_prefix('/')
}

/// File names, with a run of kept weights shortened to its first and last.
fn name_list(names: &[String]) -> String {
    let (kept, files): (Vec<&String>, Vec<&String>) = names.iter().partition(|n| kept_file(n).is_some());
    let mut parts: Vec<String> = files.into_iter().cloned().collect();
    match kept.as_slice() {
        [] => {}
        [one] => parts.push((*one).clone()),
        [first, .., last] => {
            parts.push(format!("{} kept epochs ({} … {})", kept.len(), first, kept_file(last).unwrap_or_default()))
        }
    }
    parts.join(", ")
}

/// `metrics.jsonl` as epoch → record without its wall-clock fields; a bad line is named.
fn read_records(path: &Path) -> Result<BTreeMap<usize, Value>> {
    let text = crate::store::read_regular_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut record: Value =
            serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
        let epoch = record
            .get("epoch")
            .and_then(Value::as_u64)
            .with_context(|| format!("{} line {}: no epoch number", path.display(), i + 1))?;
        if let Some(fields) = record.as_object_mut() {
            WALL_CLOCK.iter().for_each(|k| {
                fields.remove(*k);
            });
        }
        out.insert(epoch as usize, record);
    }
    Ok(out)
}

/// Epoch by epoch; at the first differing epoch, the differing fields (nested ones dotted).
pub fn metrics(a: &BTreeMap<usize, Value>, b: &BTreeMap<usize, Value>) -> MetricsDiff {
    let common: Vec<usize> = a.keys().filter(|e| b.contains_key(e)).copied().collect();
    let differing: Vec<usize> = common.iter().filter(|e| a[e] != b[e]).copied().collect();
    let mut first = Vec::new();
    if let Some(e) = differing.first() {
        fields("", &a[e], &b[e], &mut first);
    }
    MetricsDiff { only_a: a.len() - common.len(), only_b: b.len() - common.len(), common, differing, first }
}

fn fields(prefix: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
    let short = |v: &Value| {
        let s = v.to_string();
        if s.chars().count() > 80 {
            format!("{}…", s.chars().take(80).collect::<String>())
        } else {
            s
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                fields(&key, x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (x, y) if x != y => out.push((prefix.to_string(), short(x), short(y))),
        _ => {}
    }
}

/// The `.ot` files of a run: checkpoints and best weights at the top, kept weights below.
fn weights_files(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for sub in [None, Some(run::KEPT_WEIGHTS_DIR)] {
        let folder = sub.map_or_else(|| dir.to_path_buf(), |s| dir.join(s));
        if !folder.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&folder).with_context(|| format!("cannot list {}", folder.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".ot") {
                out.insert(sub.map_or_else(|| name.clone(), |s| format!("{s}/{name}")));
            }
        }
    }
    Ok(out)
}

fn weights_file(a: &Path, b: &Path, name: &str) -> Result<WeightsDiff> {
    let load = |p: &Path| -> Result<BTreeMap<String, Tensor>> {
        // Checked against its checksum: a corrupted file is an error, not a difference.
        Ok(crate::train::checkpoint::read_tensors(p, tch::Device::Cpu)?.into_iter().collect())
    };
    Ok(tensors(&load(a)?, &load(b)?, name))
}

/// Tensor by tensor, by name: equal means the same shape, kind and every value bit for bit.
pub fn tensors(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>, name: &str) -> WeightsDiff {
    let mut differing = Vec::new();
    for (key, x) in a {
        let Some(y) = b.get(key) else { continue };
        if x.size() != y.size() || x.kind() != y.kind() {
            differing.push((key.clone(), None));
        } else if !x.equal(y) {
            let delta = (x.to_kind(Kind::Double) - y.to_kind(Kind::Double)).abs().max().double_value(&[]);
            differing.push((key.clone(), Some(delta)));
        }
    }
    let unmatched = a.keys().filter(|k| !b.contains_key(*k)).chain(b.keys().filter(|k| !a.contains_key(*k)));
    WeightsDiff {
        name: name.to_string(),
        tensors: a.len().max(b.len()),
        differing,
        unmatched: unmatched.cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kept_weights_are_listed_by_their_ends() {
        let names: Vec<String> =
            ["ckpt-0200.ot", "weights/epoch-0161.ot", "weights/epoch-0162.ot", "weights/epoch-0163.ot"]
                .map(String::from)
                .into();
        assert_eq!(name_list(&names), "ckpt-0200.ot, 3 kept epochs (weights/epoch-0161.ot … epoch-0163.ot)");
        assert_eq!(name_list(&names[..2]), "ckpt-0200.ot, weights/epoch-0161.ot");
    }

    fn records(rows: &[Value]) -> BTreeMap<usize, Value> {
        rows.iter().map(|r| (r["epoch"].as_u64().unwrap() as usize, r.clone())).collect()
    }

    #[test]
    fn metrics_differ_only_where_a_number_of_the_run_does() {
        let a = records(&[
            json!({"epoch": 1, "train_loss": 2.0, "test": null}),
            json!({"epoch": 2, "train_loss": 1.5, "test": {"overall": 40.0, "few": 10.0}}),
            json!({"epoch": 3, "train_loss": 1.2, "test": null}),
        ]);
        let same = metrics(&a, &a);
        assert_eq!((same.common, same.differing, same.first), (vec![1, 2, 3], vec![], vec![]));
        let b = records(&[
            json!({"epoch": 1, "train_loss": 2.0, "test": null}),
            json!({"epoch": 2, "train_loss": 1.5, "test": {"overall": 40.0, "few": 12.5}}),
        ]);
        let d = metrics(&a, &b);
        assert_eq!(d.differing, vec![2]);
        assert_eq!(d.first, vec![("test.few".to_string(), "10.0".to_string(), "12.5".to_string())]);
        assert_eq!((d.only_a, d.only_b), (1, 0), "the shorter run is shorter, not different");
    }

    #[test]
    fn wall_clock_fields_are_not_the_run() {
        let tmp = std::env::temp_dir().join(format!("longtail-diff-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let (pa, pb) = (tmp.join("a.jsonl"), tmp.join("b.jsonl"));
        std::fs::write(&pa, "{\"epoch\":1,\"train_loss\":2.0,\"seconds\":30.1,\"images_per_second\":400}\n").unwrap();
        std::fs::write(&pb, "{\"epoch\":1,\"train_loss\":2.0,\"seconds\":58.0,\"images_per_second\":215}\n\n").unwrap();
        let d = metrics(&read_records(&pa).unwrap(), &read_records(&pb).unwrap());
        assert!(d.differing.is_empty());
        std::fs::write(&pb, "{\"epoch\":1,\"train_loss\":2.0}\nnot json\n").unwrap();
        let err = read_records(&pb).unwrap_err();
        assert!(format!("{err:#}").contains("b.jsonl line 2: not JSON"), "{err:#}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn tensors_are_compared_by_name_and_value() {
        let a: BTreeMap<String, Tensor> = [
            ("w".to_string(), Tensor::from_slice(&[1.0f32, 2.0, 3.0])),
            ("b".to_string(), Tensor::from_slice(&[0.5f32])),
        ]
        .into();
        let same: BTreeMap<String, Tensor> = a.iter().map(|(k, t)| (k.clone(), t.copy())).collect();
        assert!(tensors(&a, &same, "x.ot").same());
        let b: BTreeMap<String, Tensor> = [
            ("w".to_string(), Tensor::from_slice(&[1.0f32, 2.25, 3.0])),
            ("b".to_string(), Tensor::from_slice(&[0.5f64])),
            ("extra".to_string(), Tensor::from_slice(&[0i64])),
        ]
        .into();
        let d = tensors(&a, &b, "x.ot");
        assert_eq!(d.differing, vec![("b".to_string(), None), ("w".to_string(), Some(0.25))]);
        assert_eq!(d.unmatched, vec!["extra".to_string()]);
        assert_eq!(d.tensors, 3);
        assert!(render_weights(&d).starts_with(
            "x.ot: 3 tensors, 2 differ (largest |Δ| 2.500e-1): b (shape or kind), w; in one file only: extra"
        ));
    }
}
