//! What the network is: backbone, heads and their configuration.
pub mod classifier;
pub mod exits;
pub mod heads;
pub mod macs;
pub mod precision;
pub mod reslt;
pub mod resnet;

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use crate::data::image::ImageShape;

use classifier::{Classifier, ClassifierSpec, HeadOutputs, LastLayer};
use exits::{ExitHead, ExitsConfig};
use heads::LinearInit;
use precision::{Autocast, Precision};
use resnet::{BackboneSpec, ResNet};

/// The final classifier on the last stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// GAP → linear (the plain ResNet).
    Linear,
    /// GAP → cosine classifier (LDAM's NormedLinear, Cao et al. 2019; docs/methods.md §4): logits are
    /// cosines in [−1, 1].
    Cosine,
    /// ResLT, official CIFAR code: three BatchNorms, shared classifier (Cui et al. 2022 (ResLT); docs/methods.md §5).
    Bn3,
    /// ResLT, the report's: grouped 1×1 conv, 3 chunks, shared classifier (docs/methods.md §5 and §7).
    Grouped,
}

/// `[model]` section of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Only `resnet32` for now (5 blocks per stage); the name is checked so a typo fails loudly.
    pub arch: String,
    /// Widths of the three stages: 16/32/64 (standard) or 16/32/48 (the report's ResLT).
    pub widths: [i64; 3],
    /// Final head: `linear`, `bn3` or `grouped`.
    pub head: HeadKind,
    /// Initialisation of the `linear` head's weights (ResLT heads always use PyTorch's default).
    pub classifier_init: LinearInit,
    /// Early exits after stages 1 and 2 (ELF and the report's hybrids); none when absent.
    pub exits: Option<ExitsConfig>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: "resnet32".into(),
            widths: [16, 32, 64],
            head: HeadKind::Linear,
            classifier_init: LinearInit::Kaiming,
            exits: None,
        }
    }
}

/// The most backbone weights a config may ask for (4 GB in fp32 before momentum): a typo such
/// as `widths = [16, 32, 640000]` is refused by name instead of failing inside libtorch.
pub const MAX_BACKBONE_WEIGHTS: f64 = 1e9;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model.arch = {0:?} is not known; available: resnet20, resnet32, resnet44, resnet56, resnet110")]
    UnknownArch(String),
    #[error("model.widths = {0:?}: every width must be positive and non-decreasing")]
    BadWidths([i64; 3]),
    #[error(
        "model.widths = {widths:?}: about {millions} million backbone weights, above the limit of 1,000 million \
         (with momentum and activations that is beyond any one device); narrow the widths (ResNet-32 uses [16, 32, 64])"
    )]
    TooLarge { widths: [i64; 3], millions: u64 },
    #[error(
        "model.head = \"grouped\" needs the last stage width divisible by 3, got {0}; use widths like [16, 32, 48]"
    )]
    GroupedWidth(i64),
    #[error("{0}")]
    Exit(String),
}

impl ModelConfig {
    /// The final classifier this config asks for (`classifier_init` applies to `linear` only).
    pub fn head_spec(&self) -> ClassifierSpec {
        match self.head {
            HeadKind::Linear => ClassifierSpec::Linear(self.classifier_init),
            HeadKind::Cosine => ClassifierSpec::Cosine,
            HeadKind::Bn3 => ClassifierSpec::ResltBn3,
            HeadKind::Grouped => ClassifierSpec::ResltGrouped,
        }
    }

    /// What each head offers a loss, before any weight exists: the exits' (when there are
    /// exits) and then the final head's.
    pub fn head_outputs(&self) -> (Option<HeadOutputs>, HeadOutputs) {
        (self.exits.as_ref().map(|e| e.classifier_spec().outputs()), self.head_spec().outputs())
    }

    /// Blocks per stage for the CIFAR ResNet depth 6n+2.
    pub fn blocks_per_stage(&self) -> Result<i64, ModelError> {
        match self.arch.as_str() {
            "resnet20" => Ok(3),
            "resnet32" => Ok(5),
            "resnet44" => Ok(7),
            "resnet56" => Ok(9),
            "resnet110" => Ok(18),
            other => Err(ModelError::UnknownArch(other.to_string())),
        }
    }

    pub fn validate(&self) -> Result<BackboneSpec, ModelError> {
        let w = self.widths;
        if w.iter().any(|&x| x <= 0) || w[0] > w[1] || w[1] > w[2] {
            return Err(ModelError::BadWidths(w));
        }
        if self.head == HeadKind::Grouped && w[2] % 3 != 0 {
            return Err(ModelError::GroupedWidth(w[2]));
        }
        let blocks = self.blocks_per_stage()?;
        // Two 3×3 convolutions per block: a bound on the backbone's weights, before any is made.
        let weights: f64 = w.iter().map(|&c| 2.0 * blocks as f64 * 9.0 * (c as f64).powi(2)).sum();
        if weights > MAX_BACKBONE_WEIGHTS {
            return Err(ModelError::TooLarge { widths: w, millions: (weights / 1e6).round() as u64 });
        }
        Ok(BackboneSpec { widths: w, blocks_per_stage: blocks })
    }
}

/// Everything a forward pass produces that losses and evaluation may need.
pub struct ModelOutput {
    /// Final prediction logits `[B, C]` (for ResLT heads: the fused sum of the branches).
    pub logits: Tensor,
    /// ResLT branch logits `[3, B, C]` (head, medium, tail), when the head has branches.
    pub branches: Option<Tensor>,
    /// Early exits in order (after stage 1, after stage 2); empty without exits.
    pub exits: Vec<ExitOutput>,
}

/// What one early exit produced.
pub struct ExitOutput {
    /// Logits `[B, C]`: fused for a ResLT exit, cosines for a cosine classifier.
    pub logits: Tensor,
    pub branches: Option<Tensor>,
}

/// Inference cost of the network in multiply–accumulates per image (docs/methods.md §6, MACs).
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    /// Cost of an image that leaves at exit k (last = the final classifier): the backbone up to
    /// the exit plus every exit head evaluated on the way.
    pub exit_costs: Vec<u64>,
    /// The same network without early exits (the saving is measured against this).
    pub plain: u64,
}

/// The same NCHW tensor with NHWC strides (tch 0.24 does not bind `memory_format`).
pub fn channels_last(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// A ResNet backbone with a pooled linear classifier.
#[derive(Debug)]
pub struct Network {
    pub backbone: ResNet,
    head: Classifier,
    exits: Vec<ExitHead>,
    pub num_classes: i64,
    /// Precision of training forward passes (`forward(_, true)`); evaluation is always fp32.
    train_precision: Precision,
    /// The images it takes, for the sizes of its feature maps and its MAC count.
    input: ImageShape,
}

impl Network {
    /// Build under `p` (names follow PyTorch state-dict keys: `conv1`, `layer1.0.bn2`, `linear`)
    /// for images of `input` (the dataset's shape; weights do not depend on it, MAC counts do).
    pub fn new(p: &nn::Path, cfg: &ModelConfig, num_classes: i64, input: ImageShape) -> Result<Self, ModelError> {
        let spec = cfg.validate()?;
        let backbone = ResNet::new(p, spec);
        let last_map = macs::stage_sizes(input)[2];
        let head = Classifier::new(p, "linear", cfg.head_spec(), spec.widths[2], last_map, num_classes)
            .map_err(|e| ModelError::GroupedWidth(e.0))?;
        let mut exits = Vec::new();
        if let Some(ecfg) = &cfg.exits {
            // One exit after each of the first two stages, on that stage's output.
            for (k, (&width, &size)) in spec.widths.iter().zip(&macs::stage_sizes(input)).take(2).enumerate() {
                let e = ExitHead::new(&(p / format!("exit{}", k + 1)), ecfg, width, size, num_classes)
                    .map_err(ModelError::Exit)?;
                exits.push(e);
            }
        }
        Ok(Network { backbone, head, exits, num_classes, train_precision: Precision::Fp32, input })
    }

    /// Store every 4-d weight in channels-last (NHWC) strides. libtorch's oneDNN convolutions
    /// run ~25 % faster on CPU that way (measured on 2 cores: 301 → 390 img/s); shapes, names and
    /// values are unchanged, only the memory layout differs.
    pub fn to_channels_last(vs: &nn::VarStore) {
        tch::no_grad(|| {
            for (_, p) in vs.variables() {
                if p.dim() == 4 {
                    let mut p = p.shallow_clone();
                    p.set_data(&channels_last(&p));
                }
            }
        });
    }

    /// Train in bf16 autocast (after `precision::check` accepted it for the device) or fp32.
    pub fn set_train_precision(&mut self, precision: Precision) {
        self.train_precision = precision;
    }

    /// Logits of every head. In training with bf16 autocast the convolutions and classifiers run
    /// in bf16, and the outputs come back as fp32 so every loss is computed in fp32.
    pub fn forward(&self, xs: &Tensor, train: bool) -> ModelOutput {
        if !train || self.train_precision == Precision::Fp32 {
            return self.forward_heads(xs, train);
        }
        let out = {
            let _autocast = Autocast::enter(self.train_precision, xs.device())
                .expect("bf16 autocast is checked by precision::check before training starts");
            self.forward_heads(xs, train)
        };
        let fp32 = |t: Tensor| t.to_kind(tch::Kind::Float);
        ModelOutput {
            logits: fp32(out.logits),
            branches: out.branches.map(fp32),
            exits: out
                .exits
                .into_iter()
                .map(|e| ExitOutput { logits: fp32(e.logits), branches: e.branches.map(fp32) })
                .collect(),
        }
    }

    fn forward_heads(&self, xs: &Tensor, train: bool) -> ModelOutput {
        let stages = self.backbone.forward_stages(xs, train);
        let exits = self
            .exits
            .iter()
            .zip(&stages)
            .map(|(e, h)| {
                let (logits, branches) = e.forward(h, train);
                ExitOutput { logits, branches }
            })
            .collect();
        let (logits, branches) = self.head.forward(&stages[2], train);
        ModelOutput { logits, branches, exits }
    }

    /// Final logits `[B, C]` from the last stage (fused for ResLT heads).
    fn final_logits(&self, h: &Tensor, train: bool) -> Tensor {
        self.head.forward(h, train).0
    }

    /// What each head offers a loss: the exits' (both exits share a design; None without
    /// exits), then the final head's.
    pub fn head_outputs(&self) -> (Option<HeadOutputs>, HeadOutputs) {
        (self.exits.first().map(ExitHead::outputs), self.head.outputs())
    }

    /// Full-depth inference that skips the exit heads: what the same network costs without exits
    /// (the baseline of the early-exit timing).
    pub fn forward_full_depth(&self, xs: &Tensor) -> Tensor {
        let mut h = self.backbone.forward_stem(xs, false);
        for k in 0..3 {
            h = self.backbone.forward_stage(k, &h, false);
        }
        self.final_logits(&h, false)
    }

    /// Early-exit inference that really stops (docs/methods.md §6): after each exit, the images whose
    /// confidence reaches `tau` are answered and dropped from the batch, and only the rest run
    /// on. Returns the prediction and the exit index of every image, in input order.
    pub fn early_exit_predict(&self, xs: &Tensor, tau: f64, scale: f64) -> (Vec<i64>, Vec<usize>) {
        let _guard = tch::no_grad_guard();
        let n = xs.size()[0] as usize;
        let (mut preds, mut exits) = (vec![0i64; n], vec![self.exits.len(); n]);
        let mut remaining: Vec<i64> = (0..n as i64).collect();
        let mut h = self.backbone.forward_stem(xs, false);
        for k in 0..3 {
            h = self.backbone.forward_stage(k, &h, false);
            let Some(exit) = self.exits.get(k).filter(|_| k < 2) else { continue };
            let (logits, _) = exit.forward(&h, false);
            let logits = exit.prediction_logits(&logits, scale);
            let (conf, arg) = logits.softmax(-1, tch::Kind::Float).max_dim(-1, false);
            let conf = Vec::<f32>::try_from(conf.to_device(tch::Device::Cpu)).expect("f32 confidences");
            let arg = Vec::<i64>::try_from(arg.to_device(tch::Device::Cpu)).expect("i64 predictions");
            let mut stay = Vec::with_capacity(remaining.len());
            for (j, &i) in remaining.iter().enumerate() {
                if conf[j] as f64 >= tau {
                    (preds[i as usize], exits[i as usize]) = (arg[j], k);
                } else {
                    stay.push(j as i64);
                }
            }
            if stay.is_empty() {
                return (preds, exits);
            }
            if stay.len() < remaining.len() {
                h = h.index_select(0, &Tensor::from_slice(&stay).to_device(h.device()));
                remaining = stay.iter().map(|&j| remaining[j as usize]).collect();
            }
        }
        let logits = self.final_logits(&h, false);
        let arg = Vec::<i64>::try_from(logits.argmax(-1, false).to_device(tch::Device::Cpu)).expect("i64");
        for (j, &i) in remaining.iter().enumerate() {
            preds[i as usize] = arg[j];
        }
        (preds, exits)
    }

    /// For each head (the exits in order, then the final head), the vectors its last affine map
    /// takes (eval mode, no gradients): with [`Network::last_layers`], what second-stage methods
    /// work on with the backbone frozen.
    pub fn pooled_features(&self, xs: &Tensor) -> Vec<Tensor> {
        let _guard = tch::no_grad_guard();
        let stages = self.backbone.forward_stages(xs, false);
        let mut pooled: Vec<Tensor> = self.exits.iter().zip(&stages).map(|(e, h)| e.pooled(h)).collect();
        pooled.push(self.head.pooled(&stages[2]));
        pooled
    }

    /// Detached copies of every head's last affine map, in the order of `pooled_features`.
    pub fn last_layers(&self) -> Vec<LastLayer> {
        let mut layers: Vec<LastLayer> = self.exits.iter().map(ExitHead::last_layer).collect();
        layers.push(self.head.last_layer());
        layers
    }

    pub fn has_exits(&self) -> bool {
        !self.exits.is_empty()
    }

    /// The logits each exit (and finally the last head) predicts with, on the softmax scale used
    /// for confidence: cosine classifiers are multiplied by `scale` (raw cosines in [−1, 1]
    /// never reach a high softmax confidence), other heads are used as they are
    /// (docs/methods.md §6, prediction logits).
    pub fn prediction_logits(&self, out: &ModelOutput, scale: f64) -> Vec<Tensor> {
        let mut v: Vec<Tensor> =
            self.exits.iter().zip(&out.exits).map(|(e, o)| e.prediction_logits(&o.logits, scale)).collect();
        v.push(self.head.prediction_logits(&out.logits, scale));
        v
    }

    /// MACs per image for every way out of the network (docs/methods.md §2 and §6).
    pub fn cost_model(&self) -> CostModel {
        let cum = macs::backbone_macs(&self.backbone.spec, self.input);
        let final_head = self.head.macs;
        let mut exit_costs = Vec::new();
        let mut heads = 0;
        for (k, e) in self.exits.iter().enumerate() {
            heads += e.macs;
            exit_costs.push(cum[k + 1] + heads);
        }
        exit_costs.push(cum[3] + final_head + heads);
        CostModel { exit_costs, plain: cum[3] + final_head }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn resnet32_has_the_reference_parameter_count_and_shapes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::new(&vs.root(), &ModelConfig::default(), 10, crate::data::cifar::SHAPE).unwrap();
        let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(params, 464_154, "ResNet-32 parameter count (He et al. 2016; docs/methods.md §2)");
        let xs = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let stages = net.backbone.forward_stages(&xs, false);
        assert_eq!(stages[0].size(), vec![2, 16, 32, 32]);
        assert_eq!(stages[1].size(), vec![2, 32, 16, 16]);
        assert_eq!(stages[2].size(), vec![2, 64, 8, 8]);
        assert_eq!(net.forward(&xs, false).logits.size(), vec![2, 10]);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig { widths: [16, 32, 48], ..Default::default() };
        let net = Network::new(&vs.root(), &cfg, 100, crate::data::cifar::SHAPE).unwrap();
        assert_eq!(net.forward(&xs, true).logits.size(), vec![2, 100]);
    }

    /// Second-stage methods score heads as `last_layer().logits(pooled)`: for every classifier
    /// kind, at the final head and at the exits, that must be the network's own logits (BN in
    /// eval mode; ResLT's sum of three branch logits as one map with its bias counted thrice).
    #[test]
    fn the_last_layer_on_pooled_features_gives_every_heads_logits() {
        use exits::{ExitClassifier, ExitKind};
        let designs = [
            (HeadKind::Linear, ExitKind::ConvFc, ExitClassifier::Cosine),
            (HeadKind::Cosine, ExitKind::GapFc, ExitClassifier::Linear),
            (HeadKind::Bn3, ExitKind::Reslt, ExitClassifier::Linear),
            (HeadKind::Grouped, ExitKind::ConvFc, ExitClassifier::Linear),
        ];
        for (head, kind, classifier) in designs {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let exits = Some(ExitsConfig { kind, classifier, reslt_width: 48 });
            let cfg = ModelConfig { widths: [16, 32, 48], head, exits, ..Default::default() };
            let net = Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).unwrap();
            // Non-trivial BN statistics and biases, so a bias counted once instead of thrice shows.
            tch::no_grad(|| {
                for (name, mut t) in vs.variables() {
                    if name.ends_with("bias") || name.ends_with("running_mean") {
                        let _ = t.uniform_(-0.5, 0.5);
                    }
                }
            });
            let xs = Tensor::randn([5, 3, 32, 32], (Kind::Float, Device::Cpu));
            let out = tch::no_grad(|| net.forward(&xs, false));
            let want: Vec<&Tensor> = out.exits.iter().map(|e| &e.logits).chain([&out.logits]).collect();
            let pooled = net.pooled_features(&xs);
            assert_eq!(pooled.len(), 3);
            for ((layer, z), want) in net.last_layers().iter().zip(&pooled).zip(want) {
                // Summation order differs (one matmul on Σ p_k against three): relative to scale.
                let scale = want.abs().max().double_value(&[]).max(1.0);
                let diff = (layer.logits(z) - want).abs().max().double_value(&[]);
                assert!(
                    diff < 5e-5 * scale,
                    "{head:?} / {kind:?}: the last layer is {diff} off logits of scale {scale}"
                );
            }
        }
    }

    #[test]
    fn channels_last_changes_layout_not_results() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::new(&vs.root(), &ModelConfig::default(), 10, crate::data::cifar::SHAPE).unwrap();
        let xs = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let before = net.forward(&xs, false).logits;
        Network::to_channels_last(&vs);
        let w = &vs.variables()["layer1.0.conv1.weight"];
        assert_eq!(w.stride()[1], 1, "channel stride is 1 in NHWC");
        let after = net.forward(&channels_last(&xs), false).logits;
        // Summation order differs between layouts: compare relative to the logits' scale.
        let scale = before.abs().max().double_value(&[]);
        let diff = (before - after).abs().max().double_value(&[]);
        assert!(diff <= 1e-5 * scale.max(1.0), "max difference {diff} at scale {scale}");
    }

    #[test]
    fn init_follows_the_reference() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = Network::new(&vs.root(), &ModelConfig::default(), 10, crate::data::cifar::SHAPE).unwrap();
        let vars = vs.variables();
        let g = &vars["layer2.0.bn1.weight"];
        assert_eq!(g.min().double_value(&[]), 1.0);
        assert_eq!(vars["layer2.0.bn1.bias"].abs().max().double_value(&[]), 0.0);
        // conv std ≈ √(2 / (32·9)) for a 32-in 3×3 conv
        let w = &vars["layer3.1.conv1.weight"];
        let std = w.std(true).double_value(&[]);
        let want = (2.0f64 / (64.0 * 9.0)).sqrt();
        assert!((std / want - 1.0).abs() < 0.05, "std {std} vs {want}");
        let b = &vars["linear.bias"];
        assert!(b.abs().max().double_value(&[]) <= 0.125 + 1e-7);
    }

    #[test]
    fn cost_model_counts_exit_heads() {
        let vs = nn::VarStore::new(Device::Cpu);
        let plain =
            Network::new(&vs.root(), &ModelConfig::default(), 10, crate::data::cifar::SHAPE).unwrap().cost_model();
        assert_eq!(plain.exit_costs.len(), 1);
        assert_eq!(plain.exit_costs[0], plain.plain);
        assert_eq!((plain.plain as f64 / 1e4).round() / 100.0, 68.86);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig { head: HeadKind::Cosine, exits: Some(ExitsConfig::default()), ..Default::default() };
        let net = Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).unwrap();
        let c = net.cost_model();
        let (h1, h2) = (1_179_648 + 320, 1_179_648 + 640);
        let cum = macs::backbone_macs(&net.backbone.spec, crate::data::cifar::SHAPE);
        assert_eq!(c.exit_costs, vec![cum[1] + h1, cum[2] + h1 + h2, plain.plain + h1 + h2]);
        assert_eq!(c.plain, plain.plain);
        let out = net.forward(&Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu)), true);
        assert_eq!(out.exits.len(), 2);
        assert_eq!(net.prediction_logits(&out, 30.0).len(), 3);
    }

    #[test]
    fn early_exit_inference_that_stops_matches_the_simulated_one() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        // Cosine exits at scale 30 spread the confidences of an untrained network widely.
        let cfg = ModelConfig { exits: Some(ExitsConfig::default()), ..Default::default() };
        let net = Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).unwrap();
        let xs = Tensor::randn([64, 3, 32, 32], (Kind::Float, Device::Cpu)) * 3.0;
        let out = net.forward(&xs, false);
        let confs: Vec<Vec<f32>> = net
            .prediction_logits(&out, 30.0)
            .iter()
            .map(|z| Vec::try_from(z.softmax(-1, Kind::Float).max_dim(-1, false).0).unwrap())
            .collect();
        // A threshold inside exit 1's confidences, so some images leave there and the rest run on
        // as a smaller batch.
        let mut all: Vec<f32> = confs[0].clone();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        // Take it in the widest gap of the middle half, so float noise between two forward passes
        // cannot move an image across it.
        let (q1, q3) = (all.len() / 4, 3 * all.len() / 4);
        let gap = (q1..q3).max_by(|&a, &b| (all[a + 1] - all[a]).partial_cmp(&(all[b + 1] - all[b])).unwrap()).unwrap();
        let tau = (all[gap] as f64 + all[gap + 1] as f64) / 2.0;
        let (preds, taken) = net.early_exit_predict(&xs, tau, 30.0);
        let argmax: Vec<Vec<i64>> =
            net.prediction_logits(&out, 30.0).iter().map(|z| Vec::try_from(z.argmax(-1, false)).unwrap()).collect();
        let mut counts = [0; 3];
        for i in 0..64 {
            let want = (0..2).find(|&k| confs[k][i] as f64 >= tau).unwrap_or(2);
            assert_eq!(taken[i], want, "image {i}");
            assert_eq!(preds[i], argmax[want][i], "image {i}");
            counts[want] += 1;
        }
        assert!(counts[0] > 0 && counts[0] < 64, "some, not all, leave at exit 1: {counts:?}");
        let full = net.forward_full_depth(&xs);
        assert!((full - &out.logits).abs().max().double_value(&[]) < 1e-4);
    }

    #[test]
    fn unknown_arch_and_bad_widths_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig { arch: "resnet33".into(), ..Default::default() };
        let err = Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).unwrap_err();
        assert!(err.to_string().contains("resnet33"));
        let cfg = ModelConfig { widths: [16, 64, 32], ..Default::default() };
        assert!(Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).is_err());
    }
}
