//! Cross-entropy with optional label smoothing and optional per-class weights.
use tch::{Kind, Tensor};

/// Mean cross-entropy of `logits [B, C]` against integer `targets [B]`.
///
/// With smoothing ε the per-sample loss is (1−ε)·(−log p_y) + ε·mean_j(−log p_j), which is the
/// cross-entropy against (1−ε)·onehot + ε/C. With class weights w the batch loss is
/// Σ_i w_{y_i}·ℓ_i / Σ_i w_{y_i}: PyTorch's weighted-mean semantics (SPEC §3.3), not a mean over B.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, smoothing: f64, class_weights: Option<&Tensor>) -> Tensor {
    let log_p = logits.log_softmax(-1, Kind::Float);
    let nll = -log_p.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
    let per_sample = if smoothing > 0.0 {
        let uniform = -log_p.mean_dim(-1, false, Kind::Float);
        nll * (1.0 - smoothing) + uniform * smoothing
    } else {
        nll
    };
    match class_weights {
        None => per_sample.mean(Kind::Float),
        Some(w) => {
            let w_i = w.index_select(0, targets);
            (per_sample * &w_i).sum(Kind::Float) / w_i.sum(Kind::Float)
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
    }
}
