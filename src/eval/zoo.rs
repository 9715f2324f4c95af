//! The model zoo: a published run's weights as safetensors, beside its result
//! (`results/<name>/weights-*.safetensors`, with the run's `config.toml`), under the parameter
//! names of a PyTorch state dict (`conv1.weight`, `layer2.0.bn1.running_mean`, `linear.bias`;
//! ResLT heads under `reslt.*`, exits under `exit1.*` / `exit2.*`). Anyone can load one into a
//! plain PyTorch ResNet-32 (docs/zoo.md), and `longtail eval` on the file re-measures the
//! published number in seconds.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{nn, Device, Tensor};

use crate::config;
use crate::model::Network;
use crate::run::{self, EpochScore, GroupsInfo, RunDir, TrainState, ValidationSelection};
use crate::score::early_exit;
use crate::score::metrics::parts_alone;
use crate::score::predict::{score, TestSet};
use crate::store;
use crate::train::checkpoint;
use crate::train::setup::{load_data, resolve_device};

use super::saved_run::EvalOutcome;

/// The zoo file of a run's last epoch, and of the epoch `select` chose (when it is another).
pub const LAST_FILE: &str = "weights-last.safetensors";

pub fn chosen_file(epoch: usize) -> String {
    format!("weights-epoch-{epoch:04}.safetensors")
}

/// Write the run's weights (the last epoch's, and the validation-chosen epoch's when it was kept
/// and differs) into `out` as safetensors, with the run's config beside them; the files written.
/// Each is recorded in `sums` (the results folder's SHA256SUMS) when given.
pub fn export(run_dir: &Path, out: &Path, sums: bool) -> Result<Vec<PathBuf>> {
    let dir = RunDir::new(run_dir);
    let state: TrainState = store::read_json(&dir.file(run::STATE_FILE))
        .with_context(|| format!("{} is not a run directory with saved weights", run_dir.display()))?;
    let mut files = vec![(state.checkpoint.clone(), LAST_FILE.to_string())];
    let selection: Option<ValidationSelection> = dir.validation_selection()?;
    if let Some(epoch) = selection.map(|s| s.selected.epoch).filter(|&e| e != state.epochs_done) {
        let kept = run::kept_weights_file(epoch);
        if dir.exists(&kept) {
            files.push((kept, chosen_file(epoch)));
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let config = std::fs::read(dir.file(run::CONFIG_FILE)).context("the run's config.toml")?;
    store::atomic_write(&out.join(run::CONFIG_FILE), &config)?;
    let mut written = Vec::new();
    for (source, name) in files {
        let tensors = checkpoint::read_tensors(&dir.file(&source), Device::Cpu)?;
        let mut model: Vec<(String, Tensor)> = tensors
            .into_iter()
            .filter_map(|(n, t)| n.strip_prefix("model.").map(|n| (n.to_string(), t.contiguous())))
            .collect();
        model.sort_by(|a, b| a.0.cmp(&b.0));
        let path = out.join(&name);
        write_safetensors(&path, &model)?;
        if sums {
            store::record_in_sums(&path, &std::fs::read(&path)?)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Written beside and renamed into place, so a reader never sees half a file.
fn write_safetensors(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(named, &tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", tmp.display(), checkpoint::tch_message(&e)))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} into place", tmp.display()))
}

/// The epoch of a zoo file: in its name (`weights-epoch-0185`), or for `weights-last` the last
/// epoch of the published result beside its folder (`results/<name>.json`); 0 when neither says.
fn epoch_of(file: &Path, name: &str) -> usize {
    if let Some(e) = name.strip_prefix("weights-epoch-").and_then(|r| r.strip_suffix(".safetensors")) {
        return e.parse().unwrap_or(0);
    }
    let result = file.parent().map(|folder| folder.with_extension("json"));
    result.and_then(|r| run::Summary::read(&r).ok()).map_or(0, |s| s.last.epoch)
}

/// Evaluate a zoo file on the test set with the `config.toml` beside it: full depth, each
/// branch and exit alone, and early exit at the configured τ.
pub fn evaluate(file: &Path, data: Option<&Path>) -> Result<EvalOutcome> {
    let folder = file.parent().unwrap_or(Path::new("."));
    let cfg_path = folder.join(run::CONFIG_FILE);
    if !cfg_path.is_file() {
        bail!(
            "{}: a zoo file is evaluated with the config.toml beside it, and {} does not exist",
            file.display(),
            cfg_path.display()
        );
    }
    let cfg = config::load(&cfg_path, &[])?;
    let device = resolve_device(&cfg.device)?;
    let data = load_data(&cfg, data)?;
    let mut vs = nn::VarStore::new(device);
    let net = Network::new(&vs.root(), &cfg.model, data.train.num_classes as i64, data.train.shape)?;
    let named = Tensor::read_safetensors(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {}", file.display(), checkpoint::tch_message(&e)))?;
    checkpoint::assign(file, named, &mut vs)?;
    let groups = cfg.group_rule().assign(&data.train_counts);
    let test = TestSet::new(&data.test, device, false);
    let classes = data.train.num_classes;
    let scored = score(&net, &test, cfg.eval.batch_size, classes, &groups);
    let full = scored.fused.accuracy;
    let scores =
        net.has_exits().then(|| early_exit::exit_scores(&net, &test, cfg.eval.batch_size, cfg.loss.ldam.scale));
    let exits = scores.as_ref().map_or_else(Vec::new, |s| early_exit::exits_alone(s, &test.labels, &groups, classes));
    let branches = scored.branches.unwrap_or_default();
    let parts = parts_alone(&branches, &exits);
    let label = file.file_name().map_or("zoo".into(), |n| n.to_string_lossy().into_owned());
    let epoch = epoch_of(file, &label);
    let mut rows = vec![(label.clone(), EpochScore::new(epoch, &full))];
    rows.extend(parts.iter().map(|(name, acc)| (name.clone(), EpochScore::new(epoch, acc))));
    let early_exit = scores
        .iter()
        .map(|s| {
            let tau = cfg.inference_exit_threshold();
            early_exit::early_exit_at(s, &test.labels, &groups, classes, &net.cost_model(), tau)
        })
        .collect();
    Ok(EvalOutcome {
        notes: vec![format!("Weights: {} with the config beside it ({}).\n", file.display(), cfg_path.display())],
        label,
        scores: rows,
        groups: GroupsInfo::new(cfg.group_rule().describe(), data.train_counts.clone(), &groups),
        per_class: vec![(None, full.per_class.clone())],
        early_exit,
        timing: None,
        written: Vec::new(),
    })
}
