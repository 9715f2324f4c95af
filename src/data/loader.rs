//! Batches for one epoch, assembled on worker threads so the training loop never waits.
//!
//! The order of images and every augmentation draw come from streams keyed by
//! (seed, epoch, batch), never by thread, so the batches are identical whatever the number of
//! workers and whether the run was resumed.
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};

use super::augment::mixup::{mix_batch, Mix};
use super::augment::{augment, normalise, AugmentConfig};
use super::image::{ImageSet, ImageShape};
use super::rng::Rng;

/// One batch, normalised, ready to become a tensor.
pub struct Batch {
    /// `len × channels × height × width` (the images' `shape`), row-major.
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    /// Set when the batch was mixed (Mixup): λ and every image's partner label.
    pub mix: Option<Mix>,
    pub shape: ImageShape,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Extra key of the Mixup random stream ("mix").
const MIXUP_STREAM: u64 = 0x006d_6978;

/// The image order of one epoch.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::from_keys(&[seed, epoch as u64, u64::MAX]).shuffle(&mut order);
    order
}

/// Number of batches in an epoch of `n` images.
pub fn batches_per_epoch(n: usize, batch_size: usize, drop_last: bool) -> usize {
    if drop_last {
        n / batch_size
    } else {
        n.div_ceil(batch_size)
    }
}

/// Build batch `b` of an epoch given its order. Pure, so tests can call it directly.
pub fn make_batch(
    data: &ImageSet,
    order: &[usize],
    batch_size: usize,
    b: usize,
    augment_cfg: Option<&AugmentConfig>,
    seed: u64,
    epoch: usize,
) -> Batch {
    let idx = &order[b * batch_size..((b + 1) * batch_size).min(order.len())];
    let (shape, bytes) = (data.shape, data.shape.bytes());
    let mut images = vec![0f32; idx.len() * bytes];
    let mut labels = Vec::with_capacity(idx.len());
    let mut rng = Rng::from_keys(&[seed, epoch as u64, b as u64]);
    let mut scratch = vec![0u8; bytes];
    for (k, &i) in idx.iter().enumerate() {
        let out = &mut images[k * bytes..(k + 1) * bytes];
        match augment_cfg {
            Some(cfg) => {
                augment(data.image(i), &mut scratch, shape, cfg, &mut rng);
                normalise(&scratch, out, shape, &data.stats);
            }
            None => normalise(data.image(i), out, shape, &data.stats),
        }
        labels.push(data.labels[i] as i64);
    }
    // Mixup draws from its own stream so turning it on leaves every other draw unchanged.
    let mix = augment_cfg.filter(|c| c.mixup > 0.0).map(|c| {
        let mut mix_rng = Rng::from_keys(&[seed, epoch as u64, b as u64, MIXUP_STREAM]);
        mix_batch(&mut images, &labels, bytes, c.mixup, &mut mix_rng)
    });
    Batch { images, labels, mix, shape }
}

/// An iterator over the batches of one epoch, produced by `workers` background threads.
pub struct EpochLoader {
    receivers: Vec<Receiver<Batch>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    total: usize,
    /// Time the consumer spent blocked waiting for a batch: how much the data pipeline stalls
    /// training (reported per epoch in metrics.jsonl).
    pub waited: std::time::Duration,
}

impl EpochLoader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data: Arc<ImageSet>,
        batch_size: usize,
        drop_last: bool,
        augment_cfg: Option<AugmentConfig>,
        seed: u64,
        epoch: usize,
        workers: usize,
        skip: usize,
    ) -> Self {
        let workers = workers.max(1);
        let order = Arc::new(epoch_order(data.len(), seed, epoch));
        let total = batches_per_epoch(data.len(), batch_size, drop_last);
        let mut receivers = Vec::new();
        let mut handles = Vec::new();
        for w in 0..workers {
            // A little read-ahead per worker hides augmentation cost without hoarding memory.
            let (tx, rx) = bounded(3);
            let (data, order, augment_cfg) = (data.clone(), order.clone(), augment_cfg.clone());
            handles.push(std::thread::spawn(move || {
                let mut b = skip + w;
                while b < total {
                    let batch = make_batch(&data, &order, batch_size, b, augment_cfg.as_ref(), seed, epoch);
                    if tx.send(batch).is_err() {
                        return; // the consumer stopped early
                    }
                    b += workers;
                }
            }));
            receivers.push(rx);
        }
        EpochLoader { receivers, handles, next: skip, total, waited: std::time::Duration::ZERO }
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

impl Iterator for EpochLoader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.total {
            return None;
        }
        let w = self.next % self.receivers.len();
        self.next += 1;
        let started = std::time::Instant::now();
        let batch = self.receivers[w].recv().ok();
        self.waited += started.elapsed();
        batch
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        // Dropping the receivers makes blocked senders return, so the joins cannot hang.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Arc<ImageSet> {
        let mut set = ImageSet::empty(10, crate::data::cifar::SHAPE, crate::data::cifar::STATS);
        for i in 0..n {
            set.pixels.extend(std::iter::repeat_n((i % 256) as u8, crate::data::cifar::IMAGE_BYTES));
            set.labels.push((i % 10) as u16);
        }
        Arc::new(set)
    }

    #[test]
    fn drop_last_and_partial_batch_counts() {
        assert_eq!(batches_per_epoch(12_406, 128, false), 97);
        assert_eq!(batches_per_epoch(12_406, 128, true), 96);
        let loader = EpochLoader::new(toy(300), 128, false, None, 0, 0, 2, 0);
        let sizes: Vec<usize> = loader.map(|b| b.len()).collect();
        assert_eq!(sizes, vec![128, 128, 44]);
    }

    #[test]
    fn same_batches_whatever_the_worker_count() {
        let cfg = Some(AugmentConfig::default());
        let one: Vec<Vec<f32>> =
            EpochLoader::new(toy(200), 32, true, cfg.clone(), 5, 3, 1, 0).map(|b| b.images).collect();
        let three: Vec<Vec<f32>> = EpochLoader::new(toy(200), 32, true, cfg, 5, 3, 3, 0).map(|b| b.images).collect();
        assert_eq!(one, three);
        assert_eq!(one.len(), 6);
    }

    #[test]
    fn mixup_batches_are_reproducible_and_leave_other_draws_alone() {
        let plain = Some(AugmentConfig::default());
        let mixed = Some(AugmentConfig { mixup: 1.0, ..Default::default() });
        let a: Vec<Batch> = EpochLoader::new(toy(200), 32, true, mixed.clone(), 5, 3, 1, 0).collect();
        let b: Vec<Batch> = EpochLoader::new(toy(200), 32, true, mixed, 5, 3, 3, 0).collect();
        let c: Vec<Batch> = EpochLoader::new(toy(200), 32, true, plain, 5, 3, 1, 0).collect();
        for ((x, y), z) in a.iter().zip(&b).zip(&c) {
            assert_eq!(x.images, y.images);
            assert_eq!(x.mix, y.mix);
            assert_eq!(x.labels, z.labels, "same images in the same order with and without Mixup");
            assert!(z.mix.is_none());
            let m = x.mix.as_ref().unwrap();
            assert!((0.0..=1.0).contains(&m.lambda) && m.partner_labels.len() == x.len());
        }
        assert_ne!(a[0].mix.as_ref().unwrap().lambda, a[1].mix.as_ref().unwrap().lambda, "one λ per batch");
    }

    #[test]
    fn every_image_once_per_epoch_and_order_changes() {
        let a = epoch_order(1000, 1, 0);
        let b = epoch_order(1000, 1, 1);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, b);
    }
}
