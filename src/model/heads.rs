//! Classifier heads that sit on pooled features.
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::resnet::kaiming_std;

/// How a linear classifier's weights are initialised (SPEC §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearInit {
    /// Kaiming-normal weights, as for a Linear *inside* the reference ResNet module.
    Kaiming,
    /// PyTorch's default `nn.Linear` init, U(±1/√fan_in), as for a classifier created outside it.
    Default,
}

/// A linear classifier with bias; the bias always keeps PyTorch's default U(±1/√fan_in).
pub fn linear(p: nn::Path, c_in: i64, c_out: i64, init: LinearInit) -> nn::Linear {
    let bound = 1.0 / (c_in as f64).sqrt();
    let ws_init = match init {
        LinearInit::Kaiming => nn::Init::Randn { mean: 0.0, stdev: kaiming_std(c_in) },
        LinearInit::Default => nn::Init::Uniform { lo: -bound, up: bound },
    };
    let cfg = nn::LinearConfig { ws_init, bs_init: Some(nn::Init::Uniform { lo: -bound, up: bound }), bias: true };
    nn::linear(p, c_in, c_out, cfg)
}

/// Global average pooling over H×W: `[B, C, H, W] → [B, C]`.
pub fn global_avg_pool(xs: &Tensor) -> Tensor {
    xs.mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float)
}
