//! CIFAR ResNet-32 (He et al. 2016, §4.2) as the LDAM-DRW and ResLT code build it (docs/methods.md §2):
//! a 3×3 stem, three stages of BasicBlocks with option-A (parameter-free) shortcuts, and
//! Kaiming-normal (fan-in) conv init. Stage widths are configurable because the report's ResLT
//! head needs a last stage divisible by 3 (16/32/48).
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// std of Kaiming-normal init with fan-in mode and ReLU gain √2.
pub fn kaiming_std(fan_in: i64) -> f64 {
    (2.0 / fan_in as f64).sqrt()
}

/// A 3×3 (or k×k) convolution without bias, initialised as the reference code does.
pub fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, groups: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        groups,
        bias: false,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: kaiming_std(c_in / groups * k * k) },
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

/// PyTorch's BatchNorm momentum: the weight of the newest batch in the running statistics.
/// Every BN layer of every model uses it (`eval::precise_bn` relies on that).
pub const BN_MOMENTUM: f64 = 0.1;

/// BatchNorm with PyTorch's defaults (γ = 1, β = 0, eps 1e-5, momentum 0.1). tch's own default
/// draws γ uniformly, which is not what the reference code trains with.
pub fn batch_norm(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        eps: 1e-5,
        momentum: BN_MOMENTUM,
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// Option-A shortcut: subsample by 2 and zero-pad the channels evenly on both sides.
fn shortcut_a(xs: &Tensor, stride: i64, pad_before: i64, pad_after: i64) -> Tensor {
    let xs = if stride == 2 { xs.slice(2, 0, None, 2).slice(3, 0, None, 2) } else { xs.shallow_clone() };
    // `constant_pad_nd` pads from the last dimension backwards: (W, W, H, H, C, C).
    xs.constant_pad_nd([0, 0, 0, 0, pad_before, pad_after])
}

#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    stride: i64,
    /// Zero channels added before/after by the option-A shortcut; (0, 0) for identity.
    pad: Option<(i64, i64)>,
}

impl BasicBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let pad = if stride != 1 || c_in != c_out {
            // The reference pads planes/4 on each side for a doubling (16→32: 8+8). For other
            // widths (32→48) the added channels are split as evenly as possible, before first.
            let extra = c_out - c_in;
            Some((extra - extra / 2, extra / 2))
        } else {
            None
        };
        BasicBlock {
            conv1: conv(&p / "conv1", c_in, c_out, 3, stride, 1),
            bn1: batch_norm(&p / "bn1", c_out),
            conv2: conv(&p / "conv2", c_out, c_out, 3, 1, 1),
            bn2: batch_norm(&p / "bn2", c_out),
            stride,
            pad,
        }
    }
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        let ys = ys.apply(&self.conv2).apply_t(&self.bn2, train);
        let short = match self.pad {
            Some((before, after)) => shortcut_a(xs, self.stride, before, after),
            None => xs.shallow_clone(),
        };
        (ys + short).relu()
    }
}

/// Backbone settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackboneSpec {
    pub widths: [i64; 3],
    pub blocks_per_stage: i64,
}

/// The ResNet body: stem and three stages. `forward_stages` returns every stage output so that
/// early exits can attach to them.
#[derive(Debug)]
pub struct ResNet {
    stem: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    stages: Vec<Vec<BasicBlock>>,
    pub spec: BackboneSpec,
}

impl ResNet {
    pub fn new(p: &nn::Path, spec: BackboneSpec) -> Self {
        let stem = conv(p / "conv1", 3, spec.widths[0], 3, 1, 1);
        let stem_bn = batch_norm(p / "bn1", spec.widths[0]);
        let mut c_in = spec.widths[0];
        let mut stages = Vec::new();
        for (s, &width) in spec.widths.iter().enumerate() {
            let sp = p / format!("layer{}", s + 1);
            let blocks = (0..spec.blocks_per_stage)
                .map(|b| {
                    let stride = if s > 0 && b == 0 { 2 } else { 1 };
                    let block = BasicBlock::new(&sp / b, c_in, width, stride);
                    c_in = width;
                    block
                })
                .collect();
            stages.push(blocks);
        }
        ResNet { stem, stem_bn, stages, spec }
    }

    /// The stem: conv → BN → ReLU.
    pub fn forward_stem(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.stem).apply_t(&self.stem_bn, train).relu()
    }

    /// Stage `k` (0-based) on the output of the stem or of stage k−1.
    pub fn forward_stage(&self, k: usize, h: &Tensor, train: bool) -> Tensor {
        let mut h = h.shallow_clone();
        for block in &self.stages[k] {
            h = block.forward_t(&h, train);
        }
        h
    }

    /// Stage outputs: `[B, w0, 32, 32]`, `[B, w1, 16, 16]`, `[B, w2, 8, 8]`.
    pub fn forward_stages(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        let mut h = self.forward_stem(xs, train);
        let mut outs = Vec::with_capacity(3);
        for k in 0..self.stages.len() {
            h = self.forward_stage(k, &h, train);
            outs.push(h.shallow_clone());
        }
        outs
    }
}
