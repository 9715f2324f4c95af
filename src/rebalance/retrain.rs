//! Classifier re-training on a frozen backbone with class-balanced sampling (Kang et al.,
//! "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020):
//!
//! - **cRT**: every head's last layer is re-initialised and trained afresh;
//! - **LWS** (learnable weight scaling): the last layers stay as trained and only a per-class
//!   factor f_j on each head's logits is learnt.
//!
//! Both train on the pooled features of the training subset and of its mirror images (computed
//! once; Kang et al. run the backbone with the usual augmentation each epoch, which costs a
//! backbone pass per epoch and gives the classifier more views), for `EPOCHS` epochs of SGD with
//! momentum 0.9 and a cosine learning rate from `LR` to 0, batches of `BATCH`. The number of
//! epochs is the setting chosen on validation: every epoch's heads are kept and scored.
use tch::{nn::Init, Device, Kind, Tensor};

use super::features::{gather, BalancedSampler};
use super::heads::Head;
use super::{mislas, Setting, StageTwoContext};
use crate::data::rng::Rng;
use crate::loss::ce::cross_entropy;
use crate::model::classifier::LastLayer;
use crate::optim::sgd::Sgd;

pub const EPOCHS: usize = 10;
pub const BATCH: usize = 128;
pub const LR: f64 = 0.1;
/// cRT's weight decay (the reference CIFAR recipes' 2e-4 … 5e-4); LWS has none, since decay
/// would pull its factors from 1 towards 0.
pub const CRT_WEIGHT_DECAY: f64 = 5e-4;

pub const CRT_DESCRIPTION: &str = "re-initialises every head's last layer (a ResLT head's shared classifier) and \
                                   re-trains it with class-balanced sampling on frozen pooled features";
pub const LWS_DESCRIPTION: &str = "keeps every head's last layer and learns one factor per class on its prediction \
                                   logits, with class-balanced sampling on frozen pooled features";

/// What is learnt, and with which loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retrain {
    /// A fresh last layer, cross-entropy.
    Crt,
    /// Class scales on the kept layer, cross-entropy.
    Lws,
    /// The kept layer (at a lower rate) and class scales, label-aware smoothing (`mislas`).
    Mislas { smooth_head: f64 },
}

/// A fresh last layer of the same kind and shape: PyTorch's default Linear init U(±1/√d)
/// (drawn from libtorch's generator, which `train` seeds).
fn reinitialised(layer: &LastLayer, device: Device) -> LastLayer {
    let (c, d) = (layer.weight.size()[0], layer.weight.size()[1]);
    let bound = 1.0 / (d as f64).sqrt();
    let uniform = |shape: &[i64]| tch::nn::init::init(Init::Uniform { lo: -bound, up: bound }, shape, device);
    LastLayer {
        weight: uniform(&[c, d]),
        bias: layer.bias.as_ref().map(|_| uniform(&[c])),
        bias_copies: layer.bias_copies,
        cosine: layer.cosine,
    }
}

/// The heads to train, with the tensors that learn set to require gradients: the last layers'
/// tensors and the class scales, in two groups (they learn at different rates in `mislas`).
type Learnt = (Vec<(String, Tensor)>, Vec<(String, Tensor)>);

fn starting_heads(ctx: &StageTwoContext, what: Retrain) -> (Vec<Head>, Learnt) {
    let device = ctx.train.device();
    let (mut layers, mut scales) = (Vec::new(), Vec::new());
    let heads = ctx
        .base
        .iter()
        .enumerate()
        .map(|(k, base)| {
            let (learn_layer, learn_scale) = match what {
                Retrain::Crt => (true, false),
                Retrain::Lws => (false, true),
                Retrain::Mislas { .. } => (true, true),
            };
            let layer = if what == Retrain::Crt { reinitialised(base, device) } else { base.duplicate() };
            let layer = if learn_layer {
                let weight = layer.weight.set_requires_grad(true);
                layers.push((format!("head{k}.weight"), weight.shallow_clone()));
                let bias = layer.bias.map(|b| {
                    let b = b.set_requires_grad(true);
                    layers.push((format!("head{k}.bias"), b.shallow_clone()));
                    b
                });
                LastLayer { weight, bias, ..layer }
            } else {
                layer
            };
            let scale = learn_scale.then(|| {
                let s = Tensor::ones([base.num_classes()], (Kind::Float, device)).set_requires_grad(true);
                scales.push((format!("head{k}.scale"), s.shallow_clone()));
                s
            });
            Head { layer, scale, offset: None }
        })
        .collect();
    (heads, (layers, scales))
}

/// A detached copy of heads in training, to score later.
fn snapshot(heads: &[Head]) -> Vec<Head> {
    let copy = |t: &Tensor| t.detach().copy();
    heads
        .iter()
        .map(|h| Head {
            layer: LastLayer {
                weight: copy(&h.layer.weight),
                bias: h.layer.bias.as_ref().map(copy),
                bias_copies: h.layer.bias_copies,
                cosine: h.layer.cosine,
            },
            scale: h.scale.as_ref().map(copy),
            offset: h.offset.as_ref().map(copy),
        })
        .collect()
}

/// Train for `EPOCHS` epochs; the heads after each epoch, with the epoch as the setting.
pub fn train(ctx: &StageTwoContext, what: Retrain, seed: u64) -> Vec<Setting> {
    tch::manual_seed(seed as i64);
    let (heads, (layer_params, scale_params)) = starting_heads(ctx, what);
    let (decay, layer_lr) = match what {
        Retrain::Crt => (CRT_WEIGHT_DECAY, 1.0),
        Retrain::Lws => (0.0, 1.0),
        Retrain::Mislas { .. } => (mislas::WEIGHT_DECAY, mislas::LAYER_LR_FACTOR),
    };
    let mut layer_sgd = Sgd::new(layer_params, 0.9, decay, false);
    let mut scale_sgd = Sgd::new(scale_params, 0.9, decay, false);
    let smoothing = match what {
        Retrain::Mislas { smooth_head } => {
            let eps: Vec<f32> =
                mislas::class_smoothing(&ctx.train_counts, smooth_head).iter().map(|&e| e as f32).collect();
            Some(Tensor::from_slice(&eps).to_device(ctx.train.device()))
        }
        _ => None,
    };
    let loss_of = |logits: &Tensor, y: &Tensor| match &smoothing {
        Some(eps) => mislas::label_aware_loss(logits, y, eps),
        None => cross_entropy(logits, y, 0.0, None),
    };
    let sampler = BalancedSampler::new(&ctx.train.labels, ctx.num_classes);
    let labels = ctx.train.label_tensor();
    let per_epoch = ctx.train.len().div_ceil(BATCH);
    let total = (EPOCHS * per_epoch) as f64;
    let mut out = Vec::with_capacity(EPOCHS);
    for epoch in 0..EPOCHS {
        let mut rng = Rng::from_keys(&[seed, 0x5ec0_57a6e, epoch as u64]);
        for (step, idx) in sampler.epoch(&mut rng, per_epoch, BATCH).iter().enumerate() {
            let t = (epoch * per_epoch + step) as f64;
            let lr = 0.5 * LR * (1.0 + (std::f64::consts::PI * t / total).cos());
            let (features, y) = gather(&ctx.train, &labels, idx);
            let loss = heads
                .iter()
                .zip(&features)
                .map(|(h, z)| loss_of(&h.logits(z, ctx.softmax_scale), &y))
                .reduce(|a, b| a + b)
                .expect("at least the final head");
            layer_sgd.zero_grad();
            scale_sgd.zero_grad();
            loss.backward();
            layer_sgd.step(lr * layer_lr);
            scale_sgd.step(lr);
        }
        let label = match what {
            Retrain::Mislas { smooth_head } => format!("ε_head = {smooth_head}, epochs = {}", epoch + 1),
            _ => format!("epochs = {}", epoch + 1),
        };
        out.push(Setting { value: (epoch + 1) as f64, label, heads: snapshot(&heads) });
    }
    out
}
