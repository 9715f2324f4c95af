//! The frozen backbone's side of a second stage: every head's pooled features over a set of
//! images, computed once, and class-balanced batches drawn from them.
use tch::{Device, Kind, Tensor};

use crate::data::rng::Rng;
use crate::model::Network;
use crate::score::predict::TestSet;

/// Every head's pooled features (exits in order, then the final head) over one set of images.
pub struct FeatureSet {
    /// `[N, d_k]` per head, on the network's device.
    pub heads: Vec<Tensor>,
    pub labels: Vec<i64>,
}

impl FeatureSet {
    /// Run `net` (eval mode) over `set` in batches, keeping what each head's last layer takes.
    /// `flip` also appends the features of every image mirrored left to right: the one
    /// augmentation that needs no pass per epoch, for methods that train on these features.
    pub fn extract(net: &Network, set: &TestSet, batch_size: usize, flip: bool) -> FeatureSet {
        let views: &[bool] = if flip { &[false, true] } else { &[false] };
        let mut parts: Vec<Vec<Tensor>> = Vec::new();
        let mut labels = Vec::with_capacity(set.len() * views.len());
        let n = set.len() as i64;
        for &mirrored in views {
            let mut start = 0;
            while start < n {
                let len = (batch_size as i64).min(n - start);
                let xs = set.images.narrow(0, start, len);
                let xs = if mirrored { xs.flip([3i64]) } else { xs };
                for (k, f) in net.pooled_features(&xs).into_iter().enumerate() {
                    if parts.len() <= k {
                        parts.push(Vec::new());
                    }
                    parts[k].push(f);
                }
                start += len;
            }
            labels.extend_from_slice(&set.labels);
        }
        FeatureSet { heads: parts.iter().map(|p| Tensor::cat(p, 0)).collect(), labels }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn device(&self) -> Device {
        self.heads[0].device()
    }

    /// The labels as an int64 tensor on the features' device.
    pub fn label_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.labels).to_device(self.device())
    }
}

/// Class-balanced sampling (Kang et al., ICLR 2020): each draw picks a class uniformly, then one
/// of its samples uniformly, so every class is seen equally often whatever its count.
pub struct BalancedSampler {
    members: Vec<Vec<i64>>,
}

impl BalancedSampler {
    pub fn new(labels: &[i64], num_classes: usize) -> Self {
        let mut members = vec![Vec::new(); num_classes];
        for (i, &y) in labels.iter().enumerate() {
            members[y as usize].push(i as i64);
        }
        members.retain(|m| !m.is_empty());
        BalancedSampler { members }
    }

    /// `batches` batches of `batch` indices, drawn from the stream `rng`.
    pub fn epoch(&self, rng: &mut Rng, batches: usize, batch: usize) -> Vec<Tensor> {
        (0..batches)
            .map(|_| {
                let idx: Vec<i64> = (0..batch)
                    .map(|_| {
                        let class = &self.members[rng.below(self.members.len())];
                        class[rng.below(class.len())]
                    })
                    .collect();
                Tensor::from_slice(&idx)
            })
            .collect()
    }
}

/// Row `i` of every head's features for the indices `idx`, and their labels.
pub fn gather(set: &FeatureSet, labels: &Tensor, idx: &Tensor) -> (Vec<Tensor>, Tensor) {
    let idx = idx.to_device(set.device());
    (set.heads.iter().map(|h| h.index_select(0, &idx)).collect(), labels.index_select(0, &idx))
}

/// The empirical class prior of `labels` (the training counts over their sum), as `[C]` floats.
pub fn class_prior(counts: &[usize], device: Device) -> Tensor {
    let total = counts.iter().sum::<usize>().max(1) as f64;
    let p: Vec<f32> = counts.iter().map(|&n| (n as f64 / total) as f32).collect();
    Tensor::from_slice(&p).to_kind(Kind::Float).to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_batches_see_every_class_about_equally_whatever_its_count() {
        // 1000 samples of class 0, 10 of class 1, 1 of class 2.
        let labels: Vec<i64> = (0..1011)
            .map(|i| {
                if i < 1000 {
                    0
                } else if i < 1010 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let sampler = BalancedSampler::new(&labels, 4); // class 3 has no sample and is never drawn
        let mut rng = Rng::from_keys(&[7]);
        let mut seen = [0usize; 4];
        for b in sampler.epoch(&mut rng, 30, 100) {
            for i in Vec::<i64>::try_from(&b).unwrap() {
                seen[labels[i as usize] as usize] += 1;
            }
        }
        assert_eq!(seen.iter().sum::<usize>(), 3000);
        assert_eq!(seen[3], 0);
        for &s in &seen[..3] {
            assert!((900..1100).contains(&s), "{seen:?}");
        }
    }

    #[test]
    fn the_prior_is_the_counts_over_their_sum() {
        let p = Vec::<f32>::try_from(class_prior(&[30, 10, 0], Device::Cpu)).unwrap();
        assert_eq!(p, vec![0.75, 0.25, 0.0]);
    }
}
