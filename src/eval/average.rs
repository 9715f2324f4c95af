//! The average of the weights a run kept over its last epochs (`train --keep-weights-from`,
//! `eval --average-from`): stochastic weight averaging applied after the fact (Izmailov et al.
//! 2018). A final model picked by a rule fixed before training ends, where the best epoch is
//! picked on the test set; it smooths what the last epochs' steps and the BN moving averages
//! leave to chance. The averaged running statistics belong to no weights, so the caller
//! recomputes them (`precise_bn::recompute`), as SWA does.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::run::{kept_weights_file, RunDir};
use crate::train::checkpoint;

/// The kept weight files of epochs `from..=to` in `dir`; a missing one is an error that names it
/// and says how to keep them.
pub fn kept_files(dir: &RunDir, from: usize, to: usize) -> Result<Vec<PathBuf>> {
    if from == 0 || from > to {
        bail!("--average-from {from}: give an epoch from 1 to the run's last ({to})");
    }
    (from..=to)
        .map(|epoch| {
            let path = dir.file(&kept_weights_file(epoch));
            if !path.exists() {
                bail!(
                    "--average-from {from}: {} is missing; the run keeps each epoch's weights only when trained with --keep-weights-from (at most {from})",
                    path.display()
                );
            }
            Ok(path)
        })
        .collect()
}

/// Load the mean of `files` (each a checkpoint of `vs`'s model) into `vs`. Floating-point
/// variables are averaged in double precision; any other kind keeps the last file's value.
/// Returns the number of files averaged.
pub fn load_average(vs: &mut VarStore, files: &[impl AsRef<Path>]) -> Result<usize> {
    if files.is_empty() {
        bail!("no weights to average");
    }
    // `variables()` shares storage with the store, so each load shows through these handles.
    let vars = vs.variables();
    let mut sums: HashMap<String, Tensor> = HashMap::new();
    for file in files {
        checkpoint::load(file.as_ref(), vs)?;
        for (name, t) in &vars {
            if t.is_floating_point() {
                let value = t.to_kind(Kind::Double);
                match sums.get_mut(name) {
                    Some(sum) => *sum += value,
                    None => {
                        sums.insert(name.clone(), value);
                    }
                }
            }
        }
    }
    let n = files.len() as f64;
    tch::no_grad(|| {
        for (name, sum) in &sums {
            let mut t = vars[name].shallow_clone();
            t.copy_(&(sum / n).to_kind(t.kind()));
        }
    });
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module};
    use tch::Device;

    #[test]
    fn the_average_of_three_checkpoints_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let mut vs = VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "fc", 2, 1, Default::default());
        let vars = vs.variables();
        // Weights [1, 1], [2, 4], [6, 1] and biases 0, 3, 3: means [3, 2] and 2.
        let files: Vec<PathBuf> = [([1.0f32, 1.0], 0.0f32), ([2.0, 4.0], 3.0), ([6.0, 1.0], 3.0)]
            .iter()
            .enumerate()
            .map(|(i, (w, b))| {
                tch::no_grad(|| {
                    vars["fc.weight"].shallow_clone().copy_(&Tensor::from_slice(w).view([1, 2]));
                    vars["fc.bias"].shallow_clone().copy_(&Tensor::from_slice(&[*b]));
                });
                let path = dir.path().join(format!("epoch-{i}.ot"));
                checkpoint::save_weights(&path, &vs).unwrap();
                path
            })
            .collect();
        assert_eq!(load_average(&mut vs, &files).unwrap(), 3);
        assert_eq!(Vec::<f32>::try_from(vars["fc.weight"].view([-1])).unwrap(), vec![3.0, 2.0]);
        assert_eq!(Vec::<f32>::try_from(&vars["fc.bias"]).unwrap(), vec![2.0]);
        // x = [1, 1]: 3 + 2 + 2 = 7.
        let y = lin.forward(&Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]));
        assert_eq!(y.double_value(&[0, 0]), 7.0);
    }

    #[test]
    fn missing_epochs_and_bad_ranges_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join(crate::run::KEPT_WEIGHTS_DIR)).unwrap();
        for e in [3, 5] {
            std::fs::write(run.file(&kept_weights_file(e)), b"x").unwrap();
        }
        assert_eq!(kept_files(&run, 5, 5).unwrap().len(), 1);
        let err = kept_files(&run, 3, 5).unwrap_err().to_string();
        assert!(err.contains("epoch-0004.ot is missing") && err.contains("--keep-weights-from"), "{err}");
        assert!(kept_files(&run, 6, 5).unwrap_err().to_string().contains("from 1 to the run's last (5)"));
        assert!(kept_files(&run, 0, 5).is_err());
        assert!(load_average(&mut VarStore::new(Device::Cpu), &[] as &[PathBuf]).is_err());
    }
}
