//! Model + optimiser checkpoints. Each epoch writes `ckpt-EEEE.ot` atomically, then `state.json`
//! (atomically) pointing at it, then deletes the previous checkpoint: whatever moment a run is
//! killed, `state.json` names a complete checkpoint.
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Tensor};

use crate::store::tmp_path;

const MODEL: &str = "model.";
const MOMENTUM: &str = "momentum.";

/// Save all variables of `vs` (BN running statistics included) and the momentum buffers.
pub fn save(path: &Path, vs: &nn::VarStore, momentum: &[(String, Tensor)]) -> Result<()> {
    let mut named: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(n, t)| (format!("{MODEL}{n}"), t)).collect();
    named.extend(momentum.iter().map(|(n, t)| (format!("{MOMENTUM}{n}"), t.shallow_clone())));
    let tmp = tmp_path(path);
    Tensor::save_multi(&named, &tmp).with_context(|| format!("cannot write checkpoint {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move checkpoint {} into place", path.display()))
}

/// Save only the model variables (e.g. the best epoch's weights).
pub fn save_weights(path: &Path, vs: &nn::VarStore) -> Result<()> {
    save(path, vs, &[])
}

/// Load a checkpoint into `vs`; returns the momentum buffers. Every variable of `vs` must be
/// present with the same shape, so a checkpoint of another model is refused, not half-loaded.
pub fn load(path: &Path, vs: &mut nn::VarStore) -> Result<Vec<(String, Tensor)>> {
    // Onto the model's device: a checkpoint written on a GPU loads on a CPU-only machine too.
    let saved = Tensor::load_multi_with_device(path, vs.device())
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let mut vars = vs.variables();
    let mut momentum = Vec::new();
    let mut loaded = 0;
    tch::no_grad(|| -> Result<()> {
        for (name, t) in saved {
            if let Some(n) = name.strip_prefix(MODEL) {
                let Some(v) = vars.get_mut(n) else {
                    bail!("{}: variable {n} does not exist in this model", path.display());
                };
                if v.size() != t.size() {
                    bail!(
                        "{}: variable {n} has shape {:?}, the model expects {:?}",
                        path.display(),
                        t.size(),
                        v.size()
                    );
                }
                v.copy_(&t);
                loaded += 1;
            } else if let Some(n) = name.strip_prefix(MOMENTUM) {
                momentum.push((n.to_string(), t));
            }
        }
        Ok(())
    })?;
    if loaded != vars.len() {
        bail!("{}: holds {loaded} of the model's {} variables", path.display(), vars.len());
    }
    Ok(momentum)
}
