//! A packed long-tailed dataset: the kept training images of one (ρ, subset seed) plus the test
//! set, in the release's own record format, with a small JSON card saying what it holds. It
//! exists to carry a run's data to another machine (a GPU box that cannot download): CIFAR-10 at
//! ρ = 100 packs into 38 MB of training records instead of the full 150 MB release.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::cifar::{self, Cifar};
use super::image::ImageSet;
use super::subset::long_tailed_indices;
use crate::store;

pub const CARD_FILE: &str = "longtail-pack.json";
pub const TRAIN_FILE: &str = "train-lt.bin";

/// What a pack holds (the card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackCard {
    pub dataset: String,
    pub rho: f64,
    pub subset_seed: u32,
    pub images: usize,
    pub counts: Vec<usize>,
    /// MD5 of `train-lt.bin`, checked on load.
    pub train_md5: String,
}

/// Write the pack of (`rho`, `seed`) from the release in `release_dir` into `out`.
pub fn write(kind: Cifar, release_dir: &Path, rho: f64, seed: u32, out: &Path) -> Result<PackCard> {
    let full = cifar::load_train(kind, release_dir)?;
    super::subset::check_rho("rho", rho, full.len(), kind.num_classes())?;
    let kept = long_tailed_indices(&full.labels, kind.num_classes(), rho, seed);
    let train = full.select(&kept);
    let (header, label_at) = kind.label_layout();
    let mut bytes = Vec::with_capacity(train.len() * kind.record_bytes());
    for i in 0..train.len() {
        let mut head = vec![0u8; header]; // CIFAR-100's coarse label is not kept (unused)
        head[label_at] = train.labels[i] as u8; // CIFAR's labels fit its record's byte
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(train.image(i));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    store::atomic_write(&out.join(TRAIN_FILE), &bytes)?;
    for spec in kind.test_files() {
        let (from, to) = (release_dir.join(spec.name), out.join(spec.name));
        std::fs::copy(&from, &to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    let card = PackCard {
        dataset: kind.name().to_string(),
        rho,
        subset_seed: seed,
        images: train.len(),
        counts: train.class_counts(),
        train_md5: cifar::md5_hex(&bytes),
    };
    store::write_json(&out.join(CARD_FILE), &card)?;
    Ok(card)
}

/// The pack among the data candidates (`--data`, `$LONGTAIL_DATA`, `./data`), if the first
/// candidate present is one.
pub fn find(kind: Cifar, flag: Option<&Path>) -> Option<(PathBuf, PackCard)> {
    let dir = cifar::candidate_dirs(kind, flag).into_iter().next()?;
    let card = store::read_json::<PackCard>(&dir.join(CARD_FILE)).ok()?;
    Some((dir, card))
}

/// Load a pack's training images after checking that it holds what the config asks for.
pub fn load_train(kind: Cifar, dir: &Path, card: &PackCard, rho: f64, seed: u32) -> Result<ImageSet> {
    if card.dataset != kind.name() || card.rho != rho || card.subset_seed != seed {
        bail!(
            "{} holds {} at ρ={} (subset seed {}), but the config asks for {} at ρ={rho} (subset seed {seed}); \
             pack the right one with `longtail data pack --rho {rho} --seed {seed}`",
            dir.display(),
            card.dataset,
            card.rho,
            card.subset_seed,
            kind.name()
        );
    }
    let path = dir.join(TRAIN_FILE);
    let bytes = crate::store::read_regular(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let md5 = cifar::md5_hex(&bytes);
    if md5 != card.train_md5 {
        bail!("{} is damaged: MD5 {md5}, its card says {}", path.display(), card.train_md5);
    }
    Ok(cifar::parse_batch(kind, &path, &bytes, card.images)?)
}
