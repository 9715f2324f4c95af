//! `train --fork-from <run>`: a new run that starts from another run's last checkpoint (weights,
//! momentum, metrics and best score so far) with a config that may differ in its `[loss]`,
//! `[train]` and `[eval]` keys.
//!
//! Why: variants that change only what happens late in training (closing ELF's exits at the LR
//! drop, the exit normaliser under DRW, a later DRW start) share their first epochs with the run
//! they vary. Forking at that epoch costs the late epochs instead of a whole run. The fork
//! records its parent, the epoch and every key that differs, in `meta.json` and in the summary
//! that `publish` turns into a result, so nobody mistakes it for a run trained from scratch.
//! Whether the parent's epochs are also the fork's own (does a changed key act before the fork
//! epoch?) is the user's claim to make; the record lets a reader check it.
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::run::{self, Fork, RunDir, RunMeta, TrainState};
use crate::store;

/// Keys a fork may not change: they decide the weights' shapes, the training set or the seeded
/// data order the parent's epochs were made with.
const FIXED: [&str; 3] = ["seed", "data", "model"];

/// Whether the dotted `key` is one of [`FIXED`] or lies under one.
fn is_fixed(key: &str) -> bool {
    FIXED.iter().any(|f| key == *f || key.starts_with(&format!("{f}.")))
}

/// The resolved keys (dotted) whose values differ between `parent` and `fork`, with both values;
/// `name` and `device` are where and under which name a run executes, not what it computes.
pub fn config_changes(parent: &Config, fork: &Config) -> Vec<(String, String, String)> {
    let value = |c: &Config| toml::Value::try_from(c).expect("config serialises");
    let mut out = Vec::new();
    diff("", Some(&value(parent)), Some(&value(fork)), &mut out);
    out.retain(|(k, _, _)| k != "name" && k != "device");
    out
}

fn diff(prefix: &str, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<(String, String, String)>) {
    let show = |v: Option<&toml::Value>| v.map_or_else(|| "unset".to_string(), |v| v.to_string());
    match (a, b) {
        (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb))) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                diff(&key, ta.get(k), tb.get(k), out);
            }
        }
        (a, b) if a != b => out.push((prefix.to_string(), show(a), show(b))),
        _ => {}
    }
}

/// Create the run directory `out` for `cfg` from the last checkpoint of the run in `parent_dir`
/// and return its training state (the parent's), as `--resume` would find it. `invocation` is
/// this process's metadata; its `forked_from` is filled in here. The directory is assembled
/// beside `out` and renamed into place, so an interrupted fork leaves nothing that looks like a run.
pub fn start(parent_dir: &Path, out: &Path, cfg: &Config, invocation: &RunMeta) -> Result<(RunDir, TrainState)> {
    let parent = RunDir::new(parent_dir);
    let state_path = parent.file(run::STATE_FILE);
    if !state_path.exists() {
        bail!(
            "--fork-from {}: no {} there, so no checkpoint to start from",
            parent_dir.display(),
            state_path.display()
        );
    }
    let config_path = parent.file(run::CONFIG_FILE);
    let text = crate::store::read_regular_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let parent_cfg = crate::config::resolve(&text, &config_path.display().to_string(), &[])?;
    let changes = config_changes(&parent_cfg, cfg);
    if let Some((key, a, b)) = changes.iter().find(|(k, _, _)| is_fixed(k)) {
        bail!(
            "--fork-from {}: {key} differs ({a} → {b}); a fork continues the parent's weights on its data, \
             so it may change only [loss], [train] and [eval] keys",
            parent_dir.display()
        );
    }
    let state: TrainState = store::read_json(&state_path)?;
    if state.step > 0 {
        bail!(
            "--fork-from {}: the parent stopped in the middle of epoch {} (step {}); a fork starts from the end of \
             an epoch, so resume the parent past it first (train --resume --stop-after 1)",
            parent_dir.display(),
            state.epochs_done + 1,
            state.step
        );
    }
    if cfg.train.epochs <= state.epochs_done {
        bail!(
            "--fork-from {}: the parent has {} epochs done and this config trains {}: nothing left to train",
            parent_dir.display(),
            state.epochs_done,
            cfg.train.epochs
        );
    }
    let parent_meta: RunMeta = store::read_json(&parent.file(run::META_FILE))?;
    let mut meta = invocation.clone();
    meta.forked_from = Some(Fork {
        parent: parent_dir.display().to_string(),
        parent_name: parent_meta.name,
        after_epoch: state.epochs_done,
        parent_command: parent_meta.command,
        parent_commit: parent_meta.commit,
        parent_resumes: parent_meta.resumes,
        changed: changes.iter().map(|(k, a, b)| format!("{k}: {a} → {b}")).collect(),
    });

    let mut entries = if out.exists() {
        fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?.collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    // A lock file alone is what a failed earlier attempt of this command leaves: still empty.
    entries.retain(|e| e.file_name() != run::LOCK_FILE);
    if !entries.is_empty() {
        bail!("--fork-from: {} is not empty; choose another --out", out.display());
    }
    let staging = RunDir::new(store::tmp_path(out));
    if staging.path.exists() {
        fs::remove_dir_all(&staging.path)
            .with_context(|| format!("cannot remove the unfinished fork {}", staging.path.display()))?;
    }
    fs::create_dir_all(&staging.path).with_context(|| format!("cannot create {}", staging.path.display()))?;
    for name in [state.checkpoint.as_str(), run::BEST_WEIGHTS] {
        let from = parent.file(name);
        if from.exists() {
            // Read checked and written with a fresh checksum: a fork never starts from bytes
            // that changed after its parent wrote them.
            let bytes = store::read_checked(&from)?;
            store::atomic_write_checked(&staging.file(name), &bytes)
                .with_context(|| format!("cannot copy {} to {}", from.display(), staging.path.display()))?;
        } else if name == state.checkpoint {
            bail!("--fork-from {}: its checkpoint {} is missing", parent_dir.display(), from.display());
        }
    }
    for record in parent.read_metrics()?.into_iter().filter(|r| r.epoch <= state.epochs_done) {
        staging.append_metrics(&record)?;
    }
    store::write_json(&staging.file(run::STATE_FILE), &state)?;
    store::write_json(&staging.file(run::META_FILE), &meta)?;
    store::atomic_write(&staging.file(run::CONFIG_FILE), cfg.to_toml().as_bytes())?;
    if out.exists() {
        let _ = fs::remove_file(out.join(run::LOCK_FILE));
        fs::remove_dir(out).with_context(|| format!("cannot replace the empty directory {}", out.display()))?;
    } else if let Some(up) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(up).with_context(|| format!("cannot create {}", up.display()))?;
    }
    fs::rename(&staging.path, out)
        .with_context(|| format!("cannot move {} into place as {}", staging.path.display(), out.display()))?;
    Ok((RunDir::new(out), state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve;

    const BASE: &str = "seed = 1\n[model]\nhead = \"cosine\"\n[loss]\nkind = \"ldam\"\n[train]\nepochs = 10\n";

    #[test]
    fn changes_name_every_differing_key_but_name_and_device() {
        let a = resolve(BASE, "a", &[]).unwrap();
        let b = resolve(
            BASE,
            "b",
            &["loss.drw_epoch=8".into(), "train.epochs=12".into(), "device=\"cpu\"".into(), "name=\"other\"".into()],
        )
        .unwrap();
        let got: Vec<String> = config_changes(&a, &b).into_iter().map(|(k, x, y)| format!("{k}: {x} → {y}")).collect();
        assert_eq!(got, vec!["loss.drw_epoch: unset → 8", "train.epochs: 10 → 12"]);
        assert!(config_changes(&a, &a).is_empty());
    }

    #[test]
    fn fixed_keys_are_the_ones_that_shape_the_parent_epochs() {
        let a = resolve(BASE, "a", &[]).unwrap();
        let b = resolve(BASE, "b", &["data.rho=50".into(), "seed=2".into()]).unwrap();
        let keys: Vec<String> = config_changes(&a, &b).into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(keys, vec!["data.rho", "seed"]);
        assert!(keys.iter().all(|k| is_fixed(k)));
        assert!(!is_fixed("loss.drw_epoch") && !is_fixed("dataset") && is_fixed("model.exits.kind"));
    }
}
