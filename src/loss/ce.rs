//! Cross-entropy with optional label smoothing and optional per-class weights.
use tch::{Kind, Tensor};

use crate::model::classifier::HeadOutputs;

/// What cross-entropy needs of a head: logits that can become confident. Cosines in [−1, 1]
/// cannot (softmax over ten of them stays near uniform); on a ResLT head it reads the fused
/// logits.
pub fn fits(head: HeadOutputs) -> Result<(), &'static str> {
    if head.cosine {
        Err("cross-entropy on cosine logits in [−1, 1] cannot become confident; train a cosine classifier with \
             \"ldam\", or use a linear one")
    } else {
        Ok(())
    }
}

/// Mean cross-entropy of `logits [B, C]` against integer `targets [B]`, in PyTorch's
/// `cross_entropy(weight=w, label_smoothing=ε)` semantics (docs/methods.md §3).
///
/// Per sample, ℓ_i = (1−ε)·w_{y_i}·(−log p_{i,y_i}) + (ε/C)·Σ_j w_j·(−log p_{i,j}), and the batch
/// loss is Σ_i ℓ_i / Σ_i w_{y_i}: a weighted mean, not a mean over B. Without weights (w = 1) this
/// is the cross-entropy against (1−ε)·onehot + ε/C, averaged over B. With both, the smoothing term
/// weighs each class j by w_j, as PyTorch does, not by the sample's own w_{y_i}.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, smoothing: f64, class_weights: Option<&Tensor>) -> Tensor {
    let log_p = logits.log_softmax(-1, Kind::Float);
    let nll = -log_p.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
    let num_classes = *logits.size().last().expect("logits have a class axis") as f64;
    match class_weights {
        None => {
            let per_sample = if smoothing > 0.0 {
                nll * (1.0 - smoothing) - log_p.mean_dim(-1, false, Kind::Float) * smoothing
            } else {
                nll
            };
            per_sample.mean(Kind::Float)
        }
        Some(w) => {
            let w_i = w.index_select(0, targets);
            let mut per_sample = &nll * &w_i * (1.0 - smoothing);
            if smoothing > 0.0 {
                per_sample -=
                    (&log_p * w.unsqueeze(0)).sum_dim_intlist(-1, false, Kind::Float) * (smoothing / num_classes);
            }
            per_sample.sum(Kind::Float) / w_i.sum(Kind::Float)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn hand_computed_values() {
        // logits [0, ln 3] → p = (1/4, 3/4).
        let logits = Tensor::from_slice(&[0.0f32, 3f32.ln(), 0.0, 0.0]).view([2, 2]);
        let y = Tensor::from_slice(&[1i64, 0]);
        // sample 0: −ln 0.75; sample 1: −ln 0.5
        let plain = (-(0.75f64).ln() - (0.5f64).ln()) / 2.0;
        close(cross_entropy(&logits, &y, 0.0, None).double_value(&[]), plain);
        // ε = 0.1: ℓ_i = 0.9·nll_i + 0.1·mean_j(−log p_j)
        let s0 = 0.9 * -(0.75f64).ln() + 0.1 * (-(0.25f64).ln() - (0.75f64).ln()) / 2.0;
        let s1 = 0.9 * -(0.5f64).ln() + 0.1 * -(0.5f64).ln();
        close(cross_entropy(&logits, &y, 0.1, None).double_value(&[]), (s0 + s1) / 2.0);
        // weights (class 0: 3, class 1: 1): (1·ℓ0 + 3·ℓ1) / (1 + 3)
        let w = Tensor::from_slice(&[3.0f32, 1.0]);
        let want = (-(0.75f64).ln() + 3.0 * -(0.5f64).ln()) / 4.0;
        close(cross_entropy(&logits, &y, 0.0, Some(&w)).double_value(&[]), want);
        // weights and ε = 0.1 (PyTorch): ℓ_i = 0.9·w_y·nll_i + (0.1/2)·Σ_j w_j·(−log p_ij), / Σ w_y.
        // sample 0 (y=1, w 1): 0.9·(−ln .75) + 0.05·(3·(−ln .25) + 1·(−ln .75))
        // sample 1 (y=0, w 3): 0.9·3·(−ln .5) + 0.05·(3 + 1)·(−ln .5)
        let (a, b, c) = (-(0.25f64).ln(), -(0.75f64).ln(), -(0.5f64).ln());
        let want = (0.9 * b + 0.05 * (3.0 * a + b) + 0.9 * 3.0 * c + 0.05 * 4.0 * c) / 4.0;
        close(cross_entropy(&logits, &y, 0.1, Some(&w)).double_value(&[]), want);
        // All weights equal: the weighted form is the plain mean.
        let ones = Tensor::from_slice(&[2.0f32, 2.0]);
        close(cross_entropy(&logits, &y, 0.1, Some(&ones)).double_value(&[]), (s0 + s1) / 2.0);
    }
}
