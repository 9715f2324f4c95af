//! Early-exit heads after stage 1 and stage 2 (Duggal et al. 2020 (ELF), with placement and head
//! design ours: docs/methods.md §6; the report's hybrids: docs/methods.md §7).
//!
//! - `gap_fc`: GAP → classifier (C_in → C). Cheapest, weakest.
//! - `conv_fc` ("plain" / "simulated" in the report): conv 3×3 stride 2 (C_in → 2·C_in) → BN →
//!   ReLU → GAP → classifier (2·C_in → C).
//! - `reslt` ("full power"): conv 3×3 stride 2 (C_in → W_e) → BN → ReLU → a grouped ResLT head on
//!   W_e channels (three branches, shared classifier, fused logits).
//!
//! The classifier of `gap_fc` / `conv_fc` exits is linear (CE) or cosine (LDAM).
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

use super::classifier::{Classifier, ClassifierSpec, HeadOutputs, LastLayer};
use super::heads::LinearInit;
use super::macs::{conv_macs, halved, MapSize};
use super::resnet::{batch_norm, conv};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    GapFc,
    /// Also accepted as `plain`, the report's name ("simulated" exits, docs/methods.md §7).
    #[serde(alias = "plain")]
    ConvFc,
    Reslt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitClassifier {
    Linear,
    Cosine,
}

/// `[model.exits]`: early exits after stages 1 and 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExitsConfig {
    pub kind: ExitKind,
    pub classifier: ExitClassifier,
    /// Width W_e of a `reslt` exit's conv (divisible by 3).
    pub reslt_width: i64,
}

impl Default for ExitsConfig {
    fn default() -> Self {
        ExitsConfig { kind: ExitKind::ConvFc, classifier: ExitClassifier::Cosine, reslt_width: 48 }
    }
}

impl ExitsConfig {
    /// The classifier each exit ends in: a `reslt` exit's is the grouped ResLT head; the others
    /// take `classifier` (a linear one with Kaiming init, as inside the reference ResNet).
    pub fn classifier_spec(&self) -> ClassifierSpec {
        match (self.kind, self.classifier) {
            (ExitKind::Reslt, _) => ClassifierSpec::ResltGrouped,
            (_, ExitClassifier::Linear) => ClassifierSpec::Linear(LinearInit::Kaiming),
            (_, ExitClassifier::Cosine) => ClassifierSpec::Cosine,
        }
    }
}

/// One early exit attached to a stage output of `c_in` channels and `size` (height, width) pixels.
#[derive(Debug)]
pub struct ExitHead {
    conv: Option<(nn::Conv2D, nn::BatchNorm)>,
    classifier: Classifier,
    /// Multiply–accumulates of this head for one image.
    pub macs: u64,
}

impl ExitHead {
    pub fn new(p: &nn::Path, cfg: &ExitsConfig, c_in: i64, size: MapSize, num_classes: i64) -> Result<Self, String> {
        let (conv_out, feat) = match cfg.kind {
            ExitKind::GapFc => (None, c_in),
            ExitKind::ConvFc => (Some(2 * c_in), 2 * c_in),
            ExitKind::Reslt => {
                if cfg.reslt_width % 3 != 0 {
                    return Err(format!("model.exits.reslt_width = {} must be divisible by 3", cfg.reslt_width));
                }
                (Some(cfg.reslt_width), cfg.reslt_width)
            }
        };
        let (out_h, out_w) = if conv_out.is_some() { halved(size) } else { size };
        let conv_layers = conv_out.map(|c_out| (conv(p / "conv", c_in, c_out, 3, 2, 1), batch_norm(p / "bn", c_out)));
        let conv_cost = conv_out.map_or(0, |c_out| conv_macs(c_in, c_out, 3, 1, out_h, out_w));
        let classifier = Classifier::new(p, "fc", cfg.classifier_spec(), feat, (out_h, out_w), num_classes)
            .map_err(|e| e.to_string())?;
        Ok(ExitHead { conv: conv_layers, macs: conv_cost + classifier.macs, classifier })
    }

    /// Logits `[B, C]` (fused for a ResLT exit) and, for a ResLT exit, branch logits `[3, B, C]`.
    pub fn forward(&self, features: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let h = match &self.conv {
            Some((c, bn)) => features.apply(c).apply_t(bn, train).relu(),
            None => features.shallow_clone(),
        };
        self.classifier.forward(&h, train)
    }

    /// The vector this exit's last affine map takes (eval mode; see [`Classifier::pooled`]).
    pub fn pooled(&self, features: &Tensor) -> Tensor {
        let h = match &self.conv {
            Some((c, bn)) => features.apply(c).apply_t(bn, false).relu(),
            None => features.shallow_clone(),
        };
        self.classifier.pooled(&h)
    }

    pub fn last_layer(&self) -> LastLayer {
        self.classifier.last_layer()
    }

    /// What this exit's outputs offer a loss.
    pub fn outputs(&self) -> HeadOutputs {
        self.classifier.outputs()
    }

    /// This exit's logits on the softmax scale its confidence is read on.
    pub fn prediction_logits(&self, logits: &Tensor, scale: f64) -> Tensor {
        self.classifier.prediction_logits(logits, scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn conv_fc_exit_macs_match_the_reference() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ExitsConfig::default();
        let e1 = ExitHead::new(&(vs.root() / "e1"), &cfg, 16, (32, 32), 10).unwrap();
        let e2 = ExitHead::new(&(vs.root() / "e2"), &cfg, 32, (16, 16), 10).unwrap();
        // conv_fc exits (ours, docs/methods.md §6): 16·16·32·16·9 = 1.18M and 8·8·64·32·9 = 1.18M,
        // plus the classifier.
        assert_eq!(e1.macs, 1_179_648 + 32 * 10);
        assert_eq!(e2.macs, 1_179_648 + 64 * 10);
        let x = Tensor::randn([2, 16, 32, 32], (Kind::Float, Device::Cpu));
        let (z, b) = e1.forward(&x, true);
        assert_eq!(z.size(), vec![2, 10]);
        assert!(b.is_none() && e1.outputs().cosine);
    }

    #[test]
    fn reslt_exit_has_branches() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ExitsConfig { kind: ExitKind::Reslt, ..Default::default() };
        let e = ExitHead::new(&vs.root(), &cfg, 16, (32, 32), 10).unwrap();
        let (z, b) = e.forward(&Tensor::randn([2, 16, 32, 32], (Kind::Float, Device::Cpu)), false);
        assert_eq!(z.size(), vec![2, 10]);
        assert_eq!(b.unwrap().size(), vec![3, 2, 10]);
        assert_eq!(e.macs, 16 * 16 * 48 * 16 * 9 + 16 * 16 * 48 * 16 + 48 * 10);
        let bad = ExitsConfig { kind: ExitKind::Reslt, reslt_width: 50, ..Default::default() };
        assert!(ExitHead::new(&vs.root(), &bad, 16, (32, 32), 10).is_err());
    }
}
