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

    /// The vector the classifier's last affine map takes, from a feature map (no gradient is
    /// needed; BatchNorm in eval mode): the pooled features of a linear or cosine classifier, the
    /// sum of the three pooled branch vectors of a ResLT head, whose fused logits are the shared
    /// classifier applied to that sum with its bias counted three times ([`LastLayer`]).
    pub fn pooled(&self, features: &Tensor) -> Tensor {
        match &self.layers {
            Layers::Linear(_) | Layers::Cosine(_) => global_avg_pool(features),
            Layers::Reslt(head) => {
                let branches = head.pooled(features, false);
                &branches[0] + &branches[1] + &branches[2]
            }
        }
    }

    /// A detached copy of the last affine map (`logits = last_layer().logits(pooled(F))`), for
    /// methods that re-weigh or re-train it on frozen features.
    pub fn last_layer(&self) -> LastLayer {
        let copy = |t: &Tensor| t.detach().copy();
        match &self.layers {
            Layers::Linear(fc) => {
                LastLayer { weight: copy(&fc.ws), bias: fc.bs.as_ref().map(copy), bias_copies: 1.0, cosine: false }
            }
            Layers::Cosine(fc) => LastLayer {
                weight: copy(&fc.weight).transpose(0, 1).contiguous(),
                bias: None,
                bias_copies: 1.0,
                cosine: true,
            },
            Layers::Reslt(head) => {
                let fc = head.classifier();
                LastLayer { weight: copy(&fc.ws), bias: fc.bs.as_ref().map(copy), bias_copies: 3.0, cosine: false }
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

/// The last affine map of a classifier, detached from the network: class weight vectors as rows
/// `[C, d]` (a cosine classifier's too), a bias (none for cosine), and how many times the bias
/// enters the logits (3 for a ResLT head: its fused logits sum three branch logits that share one
/// classifier, Σ_k (W p_k + b) = W Σ_k p_k + 3b; Cui et al. 2022).
#[derive(Debug)]
pub struct LastLayer {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub bias_copies: f64,
    /// Logits are cosines between the pooled vector and each class weight (LDAM's NormedLinear).
    pub cosine: bool,
}

impl LastLayer {
    /// Logits `[B, C]` of pooled vectors `[B, d]` (cosines for a cosine classifier).
    pub fn logits(&self, pooled: &Tensor) -> Tensor {
        if self.cosine {
            let unit = |t: &Tensor| t / t.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
            return unit(pooled).matmul(&unit(&self.weight).transpose(0, 1));
        }
        let z = pooled.matmul(&self.weight.transpose(0, 1));
        match &self.bias {
            Some(b) => z + b * self.bias_copies,
            None => z,
        }
    }

    /// The logits on the softmax scale confidence is read on (cosines times `scale`), as
    /// [`Classifier::prediction_logits`] reads them.
    pub fn prediction_logits(&self, pooled: &Tensor, scale: f64) -> Tensor {
        let z = self.logits(pooled);
        if self.cosine {
            z * scale
        } else {
            z
        }
    }

    pub fn num_classes(&self) -> i64 {
        self.weight.size()[0]
    }

    /// A copy whose tensors can be changed without touching this one.
    pub fn duplicate(&self) -> LastLayer {
        LastLayer {
            weight: self.weight.copy(),
            bias: self.bias.as_ref().map(Tensor::copy),
            bias_copies: self.bias_copies,
            cosine: self.cosine,
        }
    }
}
