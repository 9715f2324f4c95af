//! Precise BatchNorm statistics: every BN layer's running mean and variance recomputed as the plain
//! average over many training batches (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", §3).
//!
//! Why: training leaves an exponential moving average (momentum 0.1) of the last ~20 batches in
//! the running buffers. At the end of the LDAM-DRW schedule the learning rate is 1e-5 and the
//! weights barely move, yet full-depth test accuracy still moves by up to ±0.4 from one epoch to
//! the next (results/ldam-drw-r100: 76.62–77.40 over epochs 181–200). That noise comes from
//! whichever batches happened to be last, and the last-epoch number inherits it. Averaging over
//! many batches removes it, so two runs can be compared on their weights rather than on luck.
//!
//! Only the buffers change, in memory: the checkpoint on disk is never touched.
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::data::augment::AugmentConfig;
use crate::data::image::ImageSet;
use crate::data::loader::{batches_per_epoch, epoch_order, make_batch};
use crate::model::resnet::BN_MOMENTUM;
use crate::train::step::images_to_device;

/// Default number of training batches averaged by `eval --precise-bn` (two epochs at ρ = 100 and
/// batch 128; PreciseBN's authors find a few thousand images enough).
pub const DEFAULT_BATCHES: usize = 200;

/// `n` full training batches as training draws them (its augmentation, Mixup included), taken
/// from the epochs after `after_epoch`: fresh draws the weights were not trained on, yet the same
/// on every call for the same run.
#[allow(clippy::too_many_arguments)]
pub fn training_batches<'a>(
    train: &'a ImageSet,
    augment: &'a AugmentConfig,
    batch_size: usize,
    seed: u64,
    after_epoch: usize,
    n: usize,
    device: Device,
    nhwc: bool,
) -> Result<impl Iterator<Item = Tensor> + 'a, String> {
    let per_epoch = batches_per_epoch(train.len(), batch_size, true);
    if per_epoch == 0 {
        return Err(format!("the training set has {} images, fewer than one batch of {batch_size}", train.len()));
    }
    let mut order: (usize, Vec<usize>) = (usize::MAX, Vec::new());
    Ok((0..n).map(move |i| {
        let epoch = after_epoch + 1 + i / per_epoch;
        if order.0 != epoch {
            order = (epoch, epoch_order(train.len(), seed, epoch));
        }
        let batch = make_batch(train, &order.1, batch_size, i % per_epoch, Some(augment), seed, epoch);
        images_to_device(&batch, device, nhwc)
    }))
}

/// The running buffers of one BatchNorm layer, as the VarStore names them.
struct BnBuffers {
    name: String,
    mean: Tensor,
    var: Tensor,
}

/// Every BatchNorm layer in `vs` (found by its `running_mean` / `running_var` buffers), sorted by
/// name so the order is stable.
fn bn_layers(vs: &VarStore) -> Vec<BnBuffers> {
    let vars = vs.variables();
    let mut layers: Vec<BnBuffers> = vars
        .iter()
        .filter_map(|(name, mean)| {
            let layer = name.strip_suffix(".running_mean")?;
            let var = vars.get(&format!("{layer}.running_var"))?;
            // `variables()` hands out shallow copies: writing into them writes the model's buffers.
            Some(BnBuffers { name: layer.to_string(), mean: mean.shallow_clone(), var: var.shallow_clone() })
        })
        .collect();
    layers.sort_by(|a, b| a.name.cmp(&b.name));
    layers
}

/// What a recomputation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    pub layers: usize,
    pub batches: usize,
    pub images: usize,
}

/// Replace every BN layer's running statistics in `vs` by their average over `batches`, each run
/// through `forward_train` (a train-mode forward pass of the model that owns `vs`).
///
/// How: before each batch the buffers are zeroed, so PyTorch's update
/// `running = (1 − m)·running + m·batch_stat` leaves exactly `m·batch_stat`; dividing by m reads
/// the batch's mean and unbiased variance back for every layer at once, whatever the depth. The
/// result weights every batch equally (as PreciseBN does), so pass batches of one size.
/// With no batches (or a model without BN) nothing changes.
pub fn recompute<I, F>(vs: &VarStore, batches: I, mut forward_train: F) -> Recomputed
where
    I: IntoIterator<Item = Tensor>,
    F: FnMut(&Tensor),
{
    let _guard = tch::no_grad_guard();
    let mut layers = bn_layers(vs);
    let mut sums: Vec<(Tensor, Tensor)> = layers.iter().map(|l| (l.mean.zeros_like(), l.var.zeros_like())).collect();
    let (mut count, mut images) = (0usize, 0usize);
    for xs in batches {
        for l in layers.iter_mut() {
            let _ = l.mean.zero_();
            let _ = l.var.zero_();
        }
        forward_train(&xs);
        for (l, (sum_mean, sum_var)) in layers.iter().zip(sums.iter_mut()) {
            *sum_mean += &l.mean / BN_MOMENTUM;
            *sum_var += &l.var / BN_MOMENTUM;
        }
        count += 1;
        images += xs.size().first().copied().unwrap_or(0) as usize;
    }
    if count > 0 {
        for (l, (sum_mean, sum_var)) in layers.iter_mut().zip(&sums) {
            l.mean.copy_(&(sum_mean / count as f64));
            l.var.copy_(&(sum_var / count as f64));
        }
    }
    Recomputed { layers: layers.len(), batches: count, images }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resnet::batch_norm;
    use tch::nn::ModuleT;
    use tch::{Device, Kind};

    fn close(a: &Tensor, b: &Tensor, tol: f64) -> bool {
        (a - b).abs().max().double_value(&[]) < tol
    }

    /// 10 images, batches of 4: only full batches, the same ones on every call, new ones after
    /// another epoch, and a clear error when not even one batch fits.
    #[test]
    fn training_batches_are_full_reproducible_and_new() {
        let mut set = ImageSet::empty(2, crate::data::cifar::SHAPE, crate::data::cifar::STATS);
        for i in 0..10u8 {
            set.pixels.extend(std::iter::repeat_n(i * 20, crate::data::cifar::IMAGE_BYTES));
            set.labels.push((i % 2).into());
        }
        let aug = AugmentConfig::default();
        let take = |after| -> Vec<Tensor> {
            training_batches(&set, &aug, 4, 7, after, 5, Device::Cpu, false).unwrap().collect()
        };
        let a = take(200);
        // 10 images make 2 full batches per epoch, so 5 batches span three epochs.
        assert_eq!(a.len(), 5);
        assert!(a.iter().all(|t| t.size() == [4, 3, 32, 32]));
        assert!(a.iter().zip(take(200)).all(|(x, y)| x.equal(&y)), "same run, same batches");
        assert!(!a[0].equal(&take(0)[0]), "after a different epoch, different draws");
        let err = training_batches(&set, &aug, 16, 7, 200, 1, Device::Cpu, false).err().unwrap();
        assert!(err.contains("10 images"), "{err}");
    }

    /// Hand-sized case: two batches of 2×1×1×2 values through one BN layer of one channel.
    /// Batch 1 holds 1, 3, 5, 7 (mean 4, unbiased var 20/3); batch 2 holds 0, 0, 2, 2 (mean 1,
    /// unbiased var 4/3). PreciseBN keeps the averages: mean 2.5, var 4. The EMA would have kept
    /// 0.1·1 + 0.9·(0.1·4) = 0.46 as the mean.
    #[test]
    fn running_stats_become_the_average_of_the_batch_stats() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let bn = batch_norm(&vs.root() / "bn", 1);
        let batches = vec![
            Tensor::from_slice(&[1f32, 3., 5., 7.]).view([2, 1, 1, 2]),
            Tensor::from_slice(&[0f32, 0., 2., 2.]).view([2, 1, 1, 2]),
        ];
        let done = recompute(&vs, batches, |xs| {
            let _ = bn.forward_t(xs, true);
        });
        assert_eq!(done, Recomputed { layers: 1, batches: 2, images: 4 });
        assert!((bn.running_mean.double_value(&[0]) - 2.5).abs() < 1e-6, "{}", bn.running_mean);
        assert!((bn.running_var.double_value(&[0]) - 4.0).abs() < 1e-6, "{}", bn.running_var);
    }

    /// Whole network, exits included: after recomputing on one batch (repeated), eval mode
    /// normalises that batch with its own statistics, so eval-mode logits match train-mode ones
    /// (up to the n/(n−1) between the unbiased running variance and the biased batch one).
    /// Stale buffers (the freshly initialised 0/1) would not.
    #[test]
    fn eval_mode_matches_train_mode_on_the_recomputed_batch() {
        use crate::model::exits::ExitsConfig;
        use crate::model::{ModelConfig, Network};
        tch::manual_seed(1);
        let vs = VarStore::new(Device::Cpu);
        // ResNet-20 keeps the test quick: 1 stem BN + 9 blocks × 2, plus one BN per conv_fc exit.
        let cfg = ModelConfig { arch: "resnet20".into(), exits: Some(ExitsConfig::default()), ..Default::default() };
        let net = Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).unwrap();
        let xs = Tensor::randn([64, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 + 0.5;
        let _guard = tch::no_grad_guard();
        let train = net.forward(&xs, true);
        let trainable_before: Vec<Tensor> = vs.trainable_variables().iter().map(|t| t.copy()).collect();
        let stale = net.forward(&xs, false);
        assert!(!close(&stale.logits, &train.logits, 1e-2), "the test needs stale buffers to differ");
        let done = recompute(&vs, vec![xs.shallow_clone(), xs.shallow_clone()], |b| {
            let _ = net.forward(b, true);
        });
        assert_eq!(done, Recomputed { layers: 21, batches: 2, images: 128 });
        let eval = net.forward(&xs, false);
        assert!(close(&eval.logits, &train.logits, 1e-2));
        for (e, t) in eval.exits.iter().zip(&train.exits) {
            assert!(close(&e.logits, &t.logits, 1e-2));
        }
        for (after, before) in vs.trainable_variables().iter().zip(&trainable_before) {
            assert!(after.equal(before), "weights must not change");
        }
    }
}
