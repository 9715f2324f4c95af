//! The layers classifiers are made of: linear and cosine classifiers on pooled features, and
//! global average pooling.
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::resnet::kaiming_std;

/// How a linear classifier's weights are initialised (docs/methods.md §2).
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

/// The cosine classifier of LDAM ("NormedLinear", Cao et al. 2019; docs/methods.md §4):
/// z_j = ⟨x/‖x‖, w_j/‖w_j‖⟩, no bias.
/// Weights start uniform in (−1, 1) with every class column rescaled to unit norm.
#[derive(Debug)]
pub struct CosineLinear {
    pub weight: Tensor,
}

impl CosineLinear {
    pub fn new(p: nn::Path, c_in: i64, c_out: i64) -> Self {
        let weight = p.var("weight", &[c_in, c_out], nn::Init::Uniform { lo: -1.0, up: 1.0 });
        tch::no_grad(|| {
            let norms = weight.norm_scalaropt_dim(2.0, [0i64].as_slice(), true);
            let _ = weight.shallow_clone().g_div_(&norms);
        });
        CosineLinear { weight }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let x = xs / xs.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
        let w = &self.weight / self.weight.norm_scalaropt_dim(2.0, [0i64].as_slice(), true).clamp_min(1e-12);
        x.matmul(&w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn cosine_logits_are_cosines() {
        let vs = nn::VarStore::new(Device::Cpu);
        let head = CosineLinear::new(vs.root() / "fc", 4, 3);
        let norms = head.weight.norm_scalaropt_dim(2.0, [0i64].as_slice(), false);
        assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5, "columns start at unit norm");
        let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu)) * 7.0;
        let z = head.forward(&x);
        assert_eq!(z.size(), vec![5, 3]);
        assert!(z.abs().max().double_value(&[]) <= 1.0 + 1e-5);
        // x parallel to column 0 gives cosine 1 there.
        let x0 = head.weight.transpose(0, 1).get(0).unsqueeze(0) * 3.0;
        assert!((head.forward(&x0).double_value(&[0, 0]) - 1.0).abs() < 1e-5);
    }
}
