//! The classifiers a network ends in, at its final head and at each early exit: one type for
//! both, so a new classifier is one variant here (with what it offers a loss) and one config
//! name in `HeadKind` or `ExitsConfig`.
use tch::nn::{self, Module};
use tch::Tensor;

use super::heads::{global_avg_pool, linear, CosineLinear, LinearInit};
use super::macs::MapSize;
use super::reslt::{IndivisibleWidth, ResltHead};

/// Which classifier to build (what a config names, before any weight exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifierSpec {
    /// GAP → linear with bias.
    Linear(LinearInit),
    /// GAP → cosine classifier (LDAM's NormedLinear, Cao et al. 2019; docs/methods.md §4).
    Cosine,
    /// ResLT with three BatchNorms (the official CIFAR code; docs/methods.md §5).
    ResltBn3,
    /// ResLT with a grouped 1×1 conv (the report's; docs/methods.md §5 and §7).
    ResltGrouped,
}

/// What a classifier's outputs offer a loss: every loss checks these against what it needs
/// (`loss::LossKind::fits`), for the final head and for the exits alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadOutputs {
    /// The logits are cosines in [−1, 1] (read on the softmax scale after × s).
    pub cosine: bool,
    /// ResLT branch logits `[3, B, C]` come beside the fused logits.
    pub branches: bool,
}

impl ClassifierSpec {
    pub fn outputs(self) -> HeadOutputs {
        HeadOutputs {
            cosine: self == ClassifierSpec::Cosine,
            branches: matches!(self, ClassifierSpec::ResltBn3 | ClassifierSpec::ResltGrouped),
        }
    }
}

#[derive(Debug)]
enum Layers {
    Linear(nn::Linear),
    Cosine(CosineLinear),
    Reslt(Box<ResltHead>),
}

/// A classifier on a feature map of `c_in` channels: logits `[B, C]` (fused for ResLT) and, for
/// ResLT, the branch logits `[3, B, C]`.
#[derive(Debug)]
pub struct Classifier {
    layers: Layers,
    spec: ClassifierSpec,
    /// Multiply–accumulates for one image (docs/methods.md §2: products of convs and linears).
    pub macs: u64,
}

impl Classifier {
    /// Build under `p`: a linear or cosine classifier as `p / linear_name` (PyTorch's state-dict
    /// key of the module it stands for), a ResLT head as `p / "reslt"`.
    pub fn new(
        p: &nn::Path,
        linear_name: &str,
        spec: ClassifierSpec,
        c_in: i64,
        size: MapSize,
        num_classes: i64,
    ) -> Result<Self, IndivisibleWidth> {
        let products = (c_in * num_classes) as u64;
        let (layers, macs) = match spec {
            ClassifierSpec::Linear(init) => {
                (Layers::Linear(linear(p / linear_name, c_in, num_classes, init)), products)
            }
            ClassifierSpec::Cosine => (Layers::Cosine(CosineLinear::new(p / linear_name, c_in, num_classes)), products),
            ClassifierSpec::ResltBn3 | ClassifierSpec::ResltGrouped => {
                let head = if spec == ClassifierSpec::ResltBn3 {
                    ResltHead::bn3(&(p / "reslt"), c_in, num_classes)
                } else {
                    ResltHead::grouped(&(p / "reslt"), c_in, num_classes)?
                };
                let macs = head.macs(size, num_classes);
                (Layers::Reslt(Box::new(head)), macs)
            }
        };
        Ok(Classifier { layers, spec, macs })
    }

    pub fn outputs(&self) -> HeadOutputs {
        self.spec.outputs()
    }

    /// Logits (fused for ResLT) and, for ResLT, the branch logits, from a feature map.
    pub fn forward(&self, features: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        match &self.layers {
            Layers::Linear(fc) => (fc.forward(&global_avg_pool(features)), None),
            Layers::Cosine(fc) => (fc.forward(&global_avg_pool(features)), None),
            Layers::Reslt(head) => {
                let b = head.forward(features, train);
                (b.sum_dim_intlist(0, false, tch::Kind::Float), Some(b))
            }
        }
    }

    /// The logits on the softmax scale confidence is read on: a cosine classifier's times
    /// `scale` (raw cosines in [−1, 1] never reach a high confidence), others as they are.
    pub fn prediction_logits(&self, logits: &Tensor, scale: f64) -> Tensor {
        if self.outputs().cosine {
            logits * scale
        } else {
            logits.shallow_clone()
        }
    }
}
