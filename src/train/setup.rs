//! What a run starts from: the device, the data of its config (the long-tailed training subset
//! and the test set), and the seeded network with its optimiser.
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Device, Tensor};

use crate::config::{Config, FolderConfig};
use crate::data::cifar;
use crate::data::image::{ImageSet, ImageShape};
use crate::data::pack;
use crate::data::subset::long_tailed_indices;
use crate::model::{precision, Network};
use crate::optim::sgd::Sgd;

/// Parse `auto`, `cpu`, `cuda` or `cuda:N`; a CUDA device that libtorch cannot see is an error
/// here rather than a libtorch failure on the first tensor.
pub fn resolve_device(spec: &str) -> Result<Device> {
    let device = match spec {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s if s.starts_with("cuda:") => {
            Device::Cuda(s[5..].parse().with_context(|| format!("device = {s:?}: expected cuda:N"))?)
        }
        s => bail!("device = {s:?} is not known; use auto, cpu, cuda or cuda:N"),
    };
    if let Device::Cuda(i) = device {
        let visible = tch::Cuda::device_count();
        if visible == 0 {
            bail!(
                "device = {spec:?}, but libtorch sees no CUDA device; a GPU build needs \
                 LONGTAIL_CUDA=1 at build time and the CUDA libtorch at run time (README, \"GPU\")"
            );
        }
        if i as i64 >= visible {
            bail!(
                "device = {spec:?} is out of range: libtorch sees {visible} CUDA device(s), cuda:0 to cuda:{}",
                visible - 1
            );
        }
    }
    Ok(device)
}

/// The long-tailed training subset and the balanced test set of a config.
pub struct RunData {
    pub train: ImageSet,
    pub test: ImageSet,
    pub train_counts: Vec<usize>,
}

/// The training images (the long-tailed subset) and the test images of `cfg`'s dataset: CIFAR
/// from its binary release or a packed subset, or an image folder (`data.folder`).
pub fn load_data(cfg: &Config, data_dir: Option<&Path>) -> Result<RunData> {
    let (train, test) = match &cfg.data.folder {
        Some(folder) => load_folder(folder, data_dir)?,
        None => load_cifar(cfg, data_dir)?,
    };
    cap_and_check(cfg, train, test)
}

fn load_folder(folder: &FolderConfig, data_dir: Option<&Path>) -> Result<(ImageSet, ImageSet)> {
    let root = data_dir.unwrap_or(&folder.root);
    let train = crate::data::folder::load(root, &root.join(&folder.train), folder.classes)?;
    let test = crate::data::folder::load(root, &root.join(&folder.test), folder.classes)?;
    Ok((train, test))
}

fn load_cifar(cfg: &Config, data_dir: Option<&Path>) -> Result<(ImageSet, ImageSet)> {
    let kind = cfg.data.dataset;
    let (train, dir) = match pack::find(kind, data_dir) {
        // A packed dataset (`longtail data pack`) already holds exactly the kept images.
        Some((dir, card)) => (pack::load_train(kind, &dir, &card, cfg.data.rho, cfg.data.subset_seed)?, dir),
        None => {
            let dir = cifar::find_dir(kind, data_dir)?;
            let full = cifar::load_train(kind, &dir)?;
            let kept = if cfg.data.rho > 1.0 {
                long_tailed_indices(&full.labels, full.num_classes, cfg.data.rho, cfg.data.subset_seed)
            } else {
                (0..full.len()).collect()
            };
            (full.select(&kept), dir)
        }
    };
    Ok((train, cifar::load_test(kind, &dir)?))
}

/// `data.max_per_class` and `eval.max_test_images` applied; the images checked against the
/// augmentations asked for.
fn cap_and_check(cfg: &Config, train: ImageSet, mut test: ImageSet) -> Result<RunData> {
    let mut kept: Vec<usize> = (0..train.len()).collect();
    if let Some(cap) = cfg.data.max_per_class {
        let mut taken = vec![0usize; train.num_classes];
        kept.retain(|&i| {
            let c = train.labels[i] as usize;
            taken[c] += 1;
            taken[c] <= cap
        });
    }
    let train = train.select(&kept);
    if let Some(n) = cfg.eval.max_test_images {
        test = test.select(&(0..n.min(test.len())).collect::<Vec<_>>());
    }
    if test.shape != train.shape {
        bail!(
            "the test images are {}, the training images {}: one dataset has one image size",
            test.shape,
            train.shape
        );
    }
    cfg.data.augment.check(train.shape).map_err(anyhow::Error::msg)?;
    let train_counts = train.class_counts();
    Ok(RunData { train, test, train_counts })
}

/// Everything `train` keeps between epochs.
pub struct Session {
    pub vs: nn::VarStore,
    pub net: Network,
    pub opt: Sgd,
}

/// The network (seeded, in the configured layout) and its optimiser, as a run starts them.
pub fn build(cfg: &Config, device: Device, num_classes: usize, input: ImageShape) -> Result<Session> {
    // Also checked here for callers other than `train` (bench, tests): before any weight exists.
    precision::check(cfg.train.precision, device)?;
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let mut net = Network::new(&vs.root(), &cfg.model, num_classes as i64, input)?;
    net.set_train_precision(cfg.train.precision);
    if cfg.train.channels_last {
        Network::to_channels_last(&vs);
    }
    let params: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let opt = Sgd::new(params, cfg.train.momentum, cfg.train.weight_decay, cfg.train.nesterov);
    Ok(Session { vs, net, opt })
}
