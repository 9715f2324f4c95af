//! ResLT heads (Cui et al. 2022 (ResLT); docs/methods.md §5, which also describes the report's
//! grouped head): three branches over the last feature map, one shared linear classifier, fused
//! logits = sum of the branch logits (at train and test time).
//!
//! - `bn3` (the official CIFAR code): three independent BatchNorm2d(W) on the same map F, then
//!   GAP → shared Linear(W → C). No ReLU after the branch BN.
//! - `grouped` (the report): 1×1 conv W → W with 3 groups, no bias → BN(W) → ReLU → GAP → three
//!   chunks of W/3 channels (H+M+T, M+T, T) → shared Linear(W/3 → C).
//!
//! The shared classifier is created outside the backbone in the reference code, so it keeps
//! PyTorch's default Linear init (U(±1/√fan_in) for weight and bias).
use tch::nn::{self, Module};
use tch::Tensor;

use super::heads::{global_avg_pool, linear, LinearInit};
use super::resnet::{batch_norm, conv};

#[derive(Debug)]
enum Branches {
    Bn3([nn::BatchNorm; 3]),
    Grouped { conv: nn::Conv2D, bn: nn::BatchNorm },
}

/// A ResLT head producing three branch logits.
#[derive(Debug)]
pub struct ResltHead {
    branches: Branches,
    fc: nn::Linear,
    width: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("the grouped ResLT head needs a feature width divisible by 3, got {0}; use widths like [16, 32, 48]")]
pub struct IndivisibleWidth(pub i64);

impl ResltHead {
    pub fn bn3(p: &nn::Path, width: i64, num_classes: i64) -> Self {
        let bns =
            [batch_norm(p / "bn_head", width), batch_norm(p / "bn_medium", width), batch_norm(p / "bn_tail", width)];
        let fc = linear(p / "fc", width, num_classes, LinearInit::Default);
        ResltHead { branches: Branches::Bn3(bns), fc, width }
    }

    pub fn grouped(p: &nn::Path, width: i64, num_classes: i64) -> Result<Self, IndivisibleWidth> {
        if width % 3 != 0 {
            return Err(IndivisibleWidth(width));
        }
        let conv = conv(p / "conv", width, width, 1, 1, 3);
        let bn = batch_norm(p / "bn", width);
        let fc = linear(p / "fc", width / 3, num_classes, LinearInit::Default);
        Ok(ResltHead { branches: Branches::Grouped { conv, bn }, fc, width })
    }

    /// Branch logits `[3, B, C]` (head, medium, tail) from a feature map `[B, W, H, W]`.
    pub fn forward(&self, features: &Tensor, train: bool) -> Tensor {
        Tensor::stack(&self.pooled(features, train).iter().map(|p| self.fc.forward(p)).collect::<Vec<_>>(), 0)
    }

    /// The pooled branch vectors (head, medium, tail), each `[B, d]`, that the shared classifier
    /// maps to the branch logits.
    pub fn pooled(&self, features: &Tensor, train: bool) -> Vec<Tensor> {
        match &self.branches {
            Branches::Bn3(bns) => bns.iter().map(|bn| global_avg_pool(&features.apply_t(bn, train))).collect(),
            Branches::Grouped { conv, bn } => {
                global_avg_pool(&features.apply(conv).apply_t(bn, train).relu()).chunk(3, 1)
            }
        }
    }

    /// The shared classifier of the three branches.
    pub fn classifier(&self) -> &nn::Linear {
        &self.fc
    }

    pub fn width(&self) -> i64 {
        self.width
    }

    /// MACs of the head beyond GAP (the 1×1 conv of `grouped` on a map of `size`, plus three
    /// classifier products).
    pub fn macs(&self, (h, w): super::macs::MapSize, num_classes: i64) -> u64 {
        match &self.branches {
            Branches::Bn3(_) => (3 * self.width * num_classes) as u64,
            Branches::Grouped { .. } => {
                super::macs::conv_macs(self.width, self.width, 1, 3, h, w) + (self.width * num_classes) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_params_and_fusion() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = ResltHead::bn3(&vs.root(), 64, 10);
        let f = Tensor::randn([5, 64, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(head.forward(&f, true).size(), vec![3, 5, 10]);
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 3 * 128 + 64 * 10 + 10, "three BNs and one shared classifier");

        let vs = nn::VarStore::new(Device::Cpu);
        let head = ResltHead::grouped(&vs.root(), 48, 10).unwrap();
        let f = Tensor::randn([5, 48, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(head.forward(&f, false).size(), vec![3, 5, 10]);
        let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 48 * 16 + 2 * 48 + 16 * 10 + 10, "grouped 1×1 conv, BN, shared 16→10 classifier");
        assert!(ResltHead::grouped(&vs.root(), 64, 10).is_err());
    }
}
