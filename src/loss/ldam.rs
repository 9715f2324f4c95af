//! LDAM loss with deferred re-weighting (Cao et al. 2019; docs/methods.md §4).
//!
//! - Margins m_j = max_m · n_j^(−1/4) / max_k n_k^(−1/4): the rarest class gets max_m.
//! - Training logits u_j = s·(z_j − m_y·1[j = y]) on the cosine logits z; loss = CE(u, y) with
//!   optional class weights in PyTorch's weighted-mean form (Σ w_y ℓ / Σ w_y).
//! - DRW: weights 1 before the switch epoch, then the class-balanced effective-number weights
//!   w_j = (1−β)/(1−β^{n_j}), renormalised to sum to C.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::ce::cross_entropy;
use crate::check::{self, BadValue};
use crate::model::classifier::HeadOutputs;

/// LDAM's `[loss]` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LdamParams {
    /// The largest margin, given to the rarest class.
    pub max_m: f64,
    /// The logit scale s of cosine logits, in the loss and wherever a cosine classifier's
    /// confidence is read (early exit).
    pub scale: f64,
}

impl Default for LdamParams {
    fn default() -> Self {
        LdamParams { max_m: 0.5, scale: 30.0 }
    }
}

impl LdamParams {
    pub fn validate(&self) -> Result<(), BadValue> {
        check::non_negative("loss.max_m", self.max_m)?;
        check::positive("loss.scale", self.scale)
    }
}

/// Deferred re-weighting's `[loss]` keys: from `drw_epoch` (0-based) on, classes are weighted by
/// the effective number of samples with `drw_beta` (Cao et al. 2019, with the effective number
/// of Cui et al. 2019). Unset `drw_epoch`: no re-weighting. It weighs cross-entropy and LDAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrwParams {
    pub drw_epoch: Option<usize>,
    pub drw_beta: f64,
}

impl Default for DrwParams {
    fn default() -> Self {
        DrwParams { drw_epoch: None, drw_beta: 0.9999 }
    }
}

impl DrwParams {
    /// `drw_beta = 1` would divide by zero in the effective number.
    pub fn validate(&self) -> Result<(), BadValue> {
        check::unit_open("loss.drw_beta", self.drw_beta)
    }

    /// Whether the class weights are on at `epoch` (0-based).
    pub fn active_at(&self, epoch: usize) -> bool {
        self.drw_epoch.is_some_and(|start| epoch >= start)
    }
}

/// What LDAM needs of a head: cosine logits (its scale s on unnormalised logits would saturate
/// the softmax), or ResLT branches, whose true-class logits it lowers by the margins before the
/// ResLT loss (the report's model 5).
pub fn fits(head: HeadOutputs) -> Result<(), &'static str> {
    if head.cosine || head.branches {
        Ok(())
    } else {
        Err("LDAM needs cosine logits (a \"cosine\" classifier) or ResLT branches")
    }
}

/// Per-class LDAM margins.
pub fn margins(counts: &[usize], max_m: f64) -> Vec<f64> {
    let q: Vec<f64> = counts.iter().map(|&n| (n.max(1) as f64).powf(-0.25)).collect();
    let top = q.iter().cloned().fold(f64::MIN, f64::max);
    q.iter().map(|v| max_m * v / top).collect()
}

/// Class-balanced weights from the effective number of samples, summing to the class count.
pub fn effective_number_weights(counts: &[usize], beta: f64) -> Vec<f64> {
    let raw: Vec<f64> = counts.iter().map(|&n| (1.0 - beta) / (1.0 - beta.powi(n as i32))).collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|w| w * counts.len() as f64 / total).collect()
}

/// Logits `[…, B, C]` with each sample's true-class logit lowered by its class margin m_y.
pub fn subtract_margins(logits: &Tensor, targets: &Tensor, margins: &Tensor) -> Tensor {
    let c = *logits.size().last().expect("logits have a class axis");
    let onehot = targets.one_hot(c).to_kind(Kind::Float);
    let m_y = margins.index_select(0, targets).unsqueeze(1);
    logits - onehot * m_y
}

/// LDAM cross-entropy on cosine logits `z [B, C]`; `margins [C]`, optional class `weights [C]`,
/// and label smoothing ε on the margin-adjusted logits (0 in every shipped LDAM config).
pub fn ldam_loss(
    cosines: &Tensor,
    targets: &Tensor,
    margins: &Tensor,
    scale: f64,
    smoothing: f64,
    weights: Option<&Tensor>,
) -> Tensor {
    let adjusted = subtract_margins(cosines, targets, margins) * scale;
    cross_entropy(&adjusted, targets, smoothing, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RHO100: [usize; 10] = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];

    /// Identity: LDAM with no margin and scale 1 is cross-entropy on the same logits, with and
    /// without class weights.
    #[test]
    fn ldam_without_margin_at_scale_one_is_cross_entropy() {
        let z = Tensor::from_slice(&[0.3f32, -1.2, 2.0, 0.7, 0.0, -0.4]).view([2, 3]);
        let y = Tensor::from_slice(&[2i64, 0]);
        let zero = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu));
        let w = Tensor::from_slice(&[0.5f32, 1.0, 2.0]);
        for weights in [None, Some(&w)] {
            let ldam = ldam_loss(&z, &y, &zero, 1.0, 0.0, weights).double_value(&[]);
            let ce = cross_entropy(&z, &y, 0.0, weights).double_value(&[]);
            assert_eq!(ldam, ce, "weights {weights:?}");
        }
    }

    #[test]
    fn margins_match_the_reference_for_rho_100() {
        let m = margins(&RHO100, 0.5);
        let want = [0.158, 0.180, 0.204, 0.232, 0.264, 0.300, 0.341, 0.387, 0.441, 0.500];
        // The commonly quoted table lists 3 decimals (its 0.441 for class 8 is a rounding slip of
        // 0.44050).
        for (a, b) in m.iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "{m:?}");
        }
        // Closed form: m_j = max_m · (n_min / n_j)^(1/4).
        for (j, &n) in RHO100.iter().enumerate() {
            assert!((m[j] - 0.5 * (50.0 / n as f64).powf(0.25)).abs() < 1e-12);
        }
        assert_eq!(m[9], 0.5);
    }

    #[test]
    fn drw_weights_match_the_reference_for_rho_100() {
        let w = effective_number_weights(&RHO100, 0.9999);
        let want = [0.051, 0.077, 0.121, 0.195, 0.319, 0.525, 0.868, 1.443, 2.409, 3.993];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 5e-4, "{w:?}");
        }
        assert!((w.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn ldam_hand_computed() {
        // Two classes, s = 2, margins (0.1, 0.5). Sample: z = (0.3, 0.2), y = 1.
        // u = 2·(0.3, 0.2 − 0.5) = (0.6, −0.6); loss = −log(e^−0.6 / (e^0.6 + e^−0.6)).
        let z = Tensor::from_slice(&[0.3f32, 0.2]).view([1, 2]);
        let y = Tensor::from_slice(&[1i64]);
        let m = Tensor::from_slice(&[0.1f32, 0.5]);
        let got = ldam_loss(&z, &y, &m, 2.0, 0.0, None).double_value(&[]);
        let want = -((-0.6f64).exp() / ((0.6f64).exp() + (-0.6f64).exp())).ln();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn margins_on_every_branch_lower_only_the_true_class() {
        // Branch logits [3, B = 2, C = 2], all 1.0; labels (0, 1); margins (0.1, 0.5).
        let z = Tensor::ones([3, 2, 2], (Kind::Float, tch::Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1]);
        let m = Tensor::from_slice(&[0.1f32, 0.5]);
        let got: Vec<f32> = Vec::try_from(subtract_margins(&z, &y, &m).flatten(0, -1)).unwrap();
        let row = [0.9f32, 1.0, 1.0, 0.5];
        let want: Vec<f32> = row.iter().cycle().take(12).copied().collect();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{got:?}");
        }
    }
}
