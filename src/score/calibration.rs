//! Calibration: does a model's confidence mean what it says? Expected calibration error over
//! equal-width confidence bins (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017;
//! 15 bins, as there and in MiSLAS, Zhong et al. CVPR 2021), and the per-bin numbers a
//! reliability diagram draws.
//!
//! Confidence is the largest softmax probability of the prediction logits (a cosine
//! classifier's on its softmax scale), the prediction its arg-max.
use serde::{Deserialize, Serialize};

/// The bin count of every ECE longtail reports.
pub const ECE_BINS: usize = 15;

/// One confidence bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// The bin is (lower, upper]; the first one also holds confidence 0.
    pub lower: f64,
    pub upper: f64,
    /// Images whose confidence falls in the bin.
    pub count: usize,
    /// Their accuracy and mean confidence, in percent (0 when the bin is empty).
    pub accuracy: f64,
    pub confidence: f64,
}

/// Expected calibration error with the bins it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// ECE in percent: Σ_b (n_b / N) · |accuracy_b − confidence_b|.
    pub ece: f64,
    /// Mean confidence and accuracy over all images, in percent (overconfidence is their gap).
    pub mean_confidence: f64,
    pub accuracy: f64,
    pub bins: Vec<ReliabilityBin>,
}

/// Calibration of predictions with confidences in [0, 1], over `bins` equal-width bins.
pub fn calibration(confidence: &[f32], correct: &[bool], bins: usize) -> Calibration {
    assert_eq!(confidence.len(), correct.len(), "one confidence per prediction");
    let bins = bins.max(1);
    let (mut count, mut hits, mut conf_sum) = (vec![0usize; bins], vec![0usize; bins], vec![0f64; bins]);
    for (&c, &ok) in confidence.iter().zip(correct) {
        let c = (c as f64).clamp(0.0, 1.0);
        // (k/B, (k+1)/B]: a confidence exactly on an edge belongs to the bin below it.
        let b = ((c * bins as f64).ceil() as usize).saturating_sub(1).min(bins - 1);
        count[b] += 1;
        hits[b] += ok as usize;
        conf_sum[b] += c;
    }
    let n = confidence.len().max(1) as f64;
    let mut ece = 0.0;
    let bins_out: Vec<ReliabilityBin> = (0..bins)
        .map(|b| {
            let (accuracy, confidence) = match count[b] {
                0 => (0.0, 0.0),
                m => (hits[b] as f64 / m as f64, conf_sum[b] / m as f64),
            };
            ece += count[b] as f64 / n * (accuracy - confidence).abs();
            ReliabilityBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                count: count[b],
                accuracy: 100.0 * accuracy,
                confidence: 100.0 * confidence,
            }
        })
        .collect();
    let total_hits: usize = hits.iter().sum();
    Calibration {
        ece: 100.0 * ece,
        mean_confidence: 100.0 * conf_sum.iter().sum::<f64>() / n,
        accuracy: 100.0 * total_hits as f64 / n,
        bins: bins_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_by_hand_on_three_bins() {
        // Bin (1/3, 2/3]: confidences 0.5, 0.6, one right → acc 0.5, conf 0.55, gap 0.05.
        // Bin (2/3, 1]: 0.9, 1.0, 0.8, two right → acc 2/3, conf 0.9, gap 0.2333….
        // Bin [0, 1/3]: 0.2, right → acc 1, conf 0.2, gap 0.8.
        let conf = [0.5, 0.6, 0.9, 1.0, 0.8, 0.2];
        let ok = [true, false, true, true, false, true];
        let cal = calibration(&conf, &ok, 3);
        let want = 2.0 / 6.0 * 0.05 + 3.0 / 6.0 * (0.9 - 2.0 / 3.0) + 1.0 / 6.0 * 0.8;
        assert!((cal.ece - 100.0 * want).abs() < 1e-4, "{} vs {}", cal.ece, 100.0 * want);
        assert_eq!(cal.bins.iter().map(|b| b.count).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!((cal.accuracy - 400.0 / 6.0).abs() < 1e-9);
        assert!((cal.mean_confidence - 100.0 * 4.0 / 6.0).abs() < 1e-4);
    }

    #[test]
    fn a_confidence_on_an_edge_goes_to_the_bin_below_and_zero_to_the_first() {
        let cal = calibration(&[0.5, 0.0, 1.0], &[true, true, true], 2);
        assert_eq!(cal.bins[0].count, 2, "0.5 ∈ (0, 0.5] and 0 ∈ the first bin");
        assert_eq!(cal.bins[1].count, 1);
    }

    #[test]
    fn confidence_that_matches_accuracy_has_no_error_and_certainty_when_wrong_has_all() {
        // 10 images at confidence 0.7, 7 of them right: perfectly calibrated.
        let conf = [0.7f32; 10];
        let ok: Vec<bool> = (0..10).map(|i| i < 7).collect();
        assert!(calibration(&conf, &ok, ECE_BINS).ece < 1e-4);
        let cal = calibration(&[1.0, 1.0], &[false, false], ECE_BINS);
        assert!((cal.ece - 100.0).abs() < 1e-9);
        assert_eq!(calibration(&[], &[], ECE_BINS).ece, 0.0);
    }
}
