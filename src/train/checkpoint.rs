//! Model + optimiser checkpoints. Each epoch writes `ckpt-EEEE.ot` atomically, then `state.json`
//! (atomically) pointing at it, then deletes the previous checkpoint: whatever moment a run is
//! killed, `state.json` names a complete checkpoint.
//!
//! libtorch serialises into memory and our own I/O writes the bytes, with a SHA-256 beside them
//! (`<file>.sha256`): a full disk is an error naming the file (libtorch's own writer aborts the
//! process), and a checkpoint whose bytes changed is refused on load instead of giving other
//! numbers.
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use tch::{nn, Device, TchError, Tensor};

use crate::store;

const MODEL: &str = "model.";
const MOMENTUM: &str = "momentum.";

/// Save all variables of `vs` (BN running statistics included) and the momentum buffers.
pub fn save(path: &Path, vs: &nn::VarStore, momentum: &[(String, Tensor)]) -> Result<()> {
    let mut named: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(n, t)| (format!("{MODEL}{n}"), t)).collect();
    named.extend(momentum.iter().map(|(n, t)| (format!("{MOMENTUM}{n}"), t.shallow_clone())));
    let bytes = serialize(&named).with_context(|| format!("cannot serialise checkpoint {}", path.display()))?;
    store::atomic_write_checked(path, &bytes).with_context(|| format!("cannot write checkpoint {}", path.display()))
}

/// libtorch's archive of `named`, in memory.
fn serialize(named: &[(String, Tensor)]) -> Result<Vec<u8>> {
    /// libtorch wants a writer it owns ('static); this one shares its buffer with the caller.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Shared::default();
    Tensor::save_multi_to_stream(named, buffer.clone()).map_err(|e| anyhow!(tch_message(&e)))?;
    let bytes = buffer.0.take();
    Ok(bytes)
}

/// The tensors of a weights file, checked against its checksum, onto `device`.
pub fn read_tensors(path: &Path, device: Device) -> Result<Vec<(String, Tensor)>> {
    let bytes = store::read_checked(path)?;
    Tensor::load_multi_from_stream_with_device(std::io::Cursor::new(bytes), device)
        .map_err(|e| anyhow!("cannot read weights {}: {}", path.display(), tch_message(&e)))
}

/// A libtorch error without the C++ stack it carries ("Exception raised from …" and ~20
/// frames), which says nothing to a user.
pub fn tch_message(e: &TchError) -> String {
    without_cpp_stack(&e.to_string()).to_string()
}

/// `text` up to the C++ stack libtorch appends to its messages.
pub fn without_cpp_stack(text: &str) -> &str {
    let cut = text.find("Exception raised from").unwrap_or(text.len());
    text[..cut].trim()
}

/// Save only the model variables (e.g. the best epoch's weights).
pub fn save_weights(path: &Path, vs: &nn::VarStore) -> Result<()> {
    save(path, vs, &[])
}

/// Load a checkpoint into `vs`; returns the momentum buffers. Every variable of `vs` must be
/// present with the same shape, so a checkpoint of another model is refused, not half-loaded.
pub fn load(path: &Path, vs: &mut nn::VarStore) -> Result<Vec<(String, Tensor)>> {
    // Onto the model's device: a checkpoint written on a GPU loads on a CPU-only machine too.
    let saved = read_tensors(path, vs.device())?;
    let mut model = Vec::new();
    let mut momentum = Vec::new();
    for (name, t) in saved {
        if let Some(n) = name.strip_prefix(MODEL) {
            model.push((n.to_string(), t));
        } else if let Some(n) = name.strip_prefix(MOMENTUM) {
            momentum.push((n.to_string(), t));
        }
    }
    assign(path, model, vs)?;
    Ok(momentum)
}

/// Copy `named` tensors (read from `origin`) into the variables of `vs`: every variable must
/// be there, by name and with its shape, and nothing else may be.
pub fn assign(origin: &Path, named: Vec<(String, Tensor)>, vs: &mut nn::VarStore) -> Result<()> {
    let mut vars = vs.variables();
    let mut loaded = 0;
    tch::no_grad(|| -> Result<()> {
        for (n, t) in named {
            let Some(v) = vars.get_mut(&n) else {
                bail!("{}: variable {n} does not exist in this model", origin.display());
            };
            if v.size() != t.size() {
                bail!("{}: variable {n} has shape {:?}, the model expects {:?}", origin.display(), t.size(), v.size());
            }
            v.copy_(&t.to_device(v.device()));
            loaded += 1;
        }
        Ok(())
    })?;
    if loaded != vars.len() {
        bail!("{}: holds {loaded} of the model's {} variables", origin.display(), vars.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(value: f64) -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().var("w", &[3], nn::Init::Const(value));
        vs
    }

    #[test]
    fn a_checkpoint_round_trips_and_a_flipped_byte_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt-0001.ot");
        save(&path, &store_of(1.5), &[("w".into(), Tensor::from_slice(&[0.25f32, 0.5, 0.75]))]).unwrap();
        let sidecar = std::fs::read_to_string(store::checksum_path(&path)).unwrap();
        assert!(sidecar.ends_with("  ckpt-0001.ot\n") && sidecar.len() == 64 + 2 + 12 + 1, "{sidecar:?}");
        let mut vs = store_of(0.0);
        let momentum = load(&path, &mut vs).unwrap();
        assert_eq!(Vec::<f32>::try_from(&vs.variables()["w"]).unwrap(), [1.5; 3]);
        assert_eq!(Vec::<f32>::try_from(&momentum[0].1).unwrap(), [0.25, 0.5, 0.75]);

        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let e = format!("{:#}", load(&path, &mut store_of(0.0)).unwrap_err());
        assert!(e.contains("ckpt-0001.ot does not match its checksum"), "{e}");
    }

    #[test]
    fn a_file_libtorch_wrote_itself_still_loads_and_its_errors_lose_the_cpp_stack() {
        // Checkpoints of earlier versions: written by libtorch to a path, without a checksum.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.ot");
        Tensor::save_multi(&[("model.w", Tensor::from_slice(&[2.0f32, 2.0, 2.0]))], &path).unwrap();
        let mut vs = store_of(0.0);
        load(&path, &mut vs).unwrap();
        assert_eq!(Vec::<f32>::try_from(&vs.variables()["w"]).unwrap(), [2.0; 3]);

        std::fs::write(&path, b"not an archive").unwrap();
        let e = format!("{:#}", load(&path, &mut store_of(0.0)).unwrap_err());
        assert!(e.contains("cannot read weights") && !e.contains("Exception raised from"), "{e}");
        assert!(e.lines().count() <= 2, "{e}");
    }
}
