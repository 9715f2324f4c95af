//! Early-exit inference (Duggal et al. 2020 (ELF); docs/methods.md §6): run the stages in order; after exit k, if the
//! exit's max softmax ≥ τ, answer its arg-max and stop; otherwise go on to the final head.
//! Accuracy, the fraction of images leaving at each exit (overall and per group), and the mean
//! MACs per image against the same network without exits.
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::metrics::{evaluate_predictions, Accuracy, Group, GroupAcc};
use super::predict::TestSet;
use crate::model::{CostModel, Network};

/// The result of early-exit inference at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyExit {
    pub threshold: f64,
    pub overall: f64,
    pub many: GroupAcc,
    pub medium: GroupAcc,
    pub few: GroupAcc,
    /// Mean multiply–accumulates per image, exit heads included.
    pub mean_macs: f64,
    /// MACs of the same network without exits.
    pub full_macs: u64,
    /// 1 − mean_macs / full_macs.
    pub saving: f64,
    /// Fraction of test images leaving at each exit (last = final head).
    pub exit_fractions: Vec<f64>,
    /// The same per group: [many, medium, few][exit].
    pub exit_fractions_by_group: Vec<Vec<f64>>,
}

/// Wall-clock of full-depth versus early-exit inference at one batch size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitTiming {
    pub batch: usize,
    pub images: usize,
    pub tau: f64,
    /// Interleaved passes per way (full, early, full, early, …); the seconds are their medians,
    /// so a slow moment of the machine hits both ways alike instead of one.
    pub repetitions: usize,
    /// Seconds for `images` images without the exit heads (the plain network).
    pub full_depth_seconds: f64,
    /// Seconds with early exits that really stop (`Network::early_exit_predict`).
    pub early_exit_seconds: f64,
    /// Accuracy of the early-exit predictions (equal to the simulated one up to float noise).
    pub early_exit_accuracy: f64,
}

impl ExitTiming {
    pub fn speedup(&self) -> f64 {
        self.full_depth_seconds / self.early_exit_seconds
    }
}

/// Confidence and prediction of every exit for every test image (computed once, then any number
/// of thresholds are cheap).
pub struct ExitScores {
    pub confidence: Vec<Vec<f32>>,
    pub prediction: Vec<Vec<i64>>,
}

impl ExitScores {
    pub fn new() -> Self {
        ExitScores { confidence: Vec::new(), prediction: Vec::new() }
    }

    /// Append a batch: every head's prediction logits `[B, C]` (exits in order, final last).
    pub fn push(&mut self, logits: &[Tensor]) {
        if self.confidence.is_empty() {
            self.confidence = vec![Vec::new(); logits.len()];
            self.prediction = vec![Vec::new(); logits.len()];
        }
        for (k, z) in logits.iter().enumerate() {
            let (conf, arg) = z.softmax(-1, Kind::Float).max_dim(-1, false);
            self.confidence[k].extend(Vec::<f32>::try_from(&conf.to_device(Device::Cpu)).expect("f32"));
            self.prediction[k]
                .extend(Vec::<i64>::try_from(&arg.to_device(Device::Cpu).to_kind(Kind::Int64)).expect("i64"));
        }
    }

    /// The final head's confidences and predictions.
    pub fn final_head(&self) -> (&[f32], &[i64]) {
        let k = self.confidence.len() - 1;
        (&self.confidence[k], &self.prediction[k])
    }
}

impl Default for ExitScores {
    fn default() -> Self {
        Self::new()
    }
}

pub fn exit_scores(net: &Network, test: &TestSet, batch_size: usize, scale: f64) -> ExitScores {
    let _guard = tch::no_grad_guard();
    let mut scores = ExitScores::new();
    let n = test.len() as i64;
    let mut start = 0;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let out = net.forward(&test.images.narrow(0, start, len), false);
        scores.push(&net.prediction_logits(&out, scale));
        start += len;
    }
    scores
}

/// Index of the exit each image leaves at for threshold `tau`.
pub fn exit_taken(scores: &ExitScores, tau: f64) -> Vec<usize> {
    let k_last = scores.confidence.len() - 1;
    (0..scores.confidence[0].len())
        .map(|i| (0..k_last).find(|&k| scores.confidence[k][i] as f64 >= tau).unwrap_or(k_last))
        .collect()
}

pub fn early_exit_at(
    scores: &ExitScores,
    labels: &[i64],
    groups: &[Group],
    num_classes: usize,
    costs: &CostModel,
    tau: f64,
) -> EarlyExit {
    let taken = exit_taken(scores, tau);
    let k = scores.confidence.len();
    let preds: Vec<i64> = taken.iter().enumerate().map(|(i, &e)| scores.prediction[e][i]).collect();
    let acc = evaluate_predictions(&preds, labels, num_classes, groups).accuracy;
    let n = taken.len().max(1) as f64;
    let mut fractions = vec![0.0; k];
    let mut by_group = vec![vec![0.0; k]; 3];
    let mut group_sizes = [0usize; 3];
    let mut macs = 0.0;
    for (i, &e) in taken.iter().enumerate() {
        fractions[e] += 1.0 / n;
        let g = groups[labels[i] as usize].index();
        by_group[g][e] += 1.0;
        group_sizes[g] += 1;
        macs += costs.exit_costs[e] as f64;
    }
    for (g, row) in by_group.iter_mut().enumerate() {
        row.iter_mut().for_each(|v| *v /= group_sizes[g].max(1) as f64);
    }
    let mean_macs = macs / n;
    EarlyExit {
        threshold: tau,
        overall: acc.overall,
        many: acc.many,
        medium: acc.medium,
        few: acc.few,
        mean_macs,
        full_macs: costs.plain,
        saving: 1.0 - mean_macs / costs.plain as f64,
        exit_fractions: fractions,
        exit_fractions_by_group: by_group,
    }
}

/// Accuracy of each early exit answering every test image by itself (the final head, which is
/// the full-depth number, is left out). A routed exit that sees only one class while training,
/// and so predicts that class for everything, shows here as ≈ 1/C accuracy.
pub fn exits_alone(scores: &ExitScores, labels: &[i64], groups: &[Group], num_classes: usize) -> Vec<Accuracy> {
    let early = scores.prediction.len().saturating_sub(1);
    scores.prediction[..early]
        .iter()
        .map(|preds| evaluate_predictions(preds, labels, num_classes, groups).accuracy)
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Time both ways of answering over the first `images` test images in batches of `batch`: one
/// untimed warm-up batch each, then `repetitions` interleaved passes of each way.
pub fn time_early_exit(
    net: &Network,
    test: &TestSet,
    batch: usize,
    images: usize,
    tau: f64,
    scale: f64,
    repetitions: usize,
) -> ExitTiming {
    let _guard = tch::no_grad_guard();
    let n = images.min(test.len()) as i64;
    let batch = batch.max(1);
    let chunks = || (0..n).step_by(batch).map(move |s| (s, (batch as i64).min(n - s)));
    let warm_up = test.images.narrow(0, 0, batch.min(n as usize) as i64);
    let _ = net.forward_full_depth(&warm_up).int64_value(&[0, 0]);
    let _ = net.early_exit_predict(&warm_up, tau, scale);
    let (mut full, mut early) = (Vec::new(), Vec::new());
    let mut correct = 0usize;
    for _ in 0..repetitions.max(1) {
        let t0 = std::time::Instant::now();
        for (s, len) in chunks() {
            // Reading one value forces the computation on asynchronous devices too.
            let _ = net.forward_full_depth(&test.images.narrow(0, s, len)).argmax(-1, false).int64_value(&[0]);
        }
        full.push(t0.elapsed().as_secs_f64());
        let t0 = std::time::Instant::now();
        correct = 0;
        for (s, len) in chunks() {
            let (preds, _) = net.early_exit_predict(&test.images.narrow(0, s, len), tau, scale);
            correct += preds.iter().zip(&test.labels[s as usize..(s + len) as usize]).filter(|(p, y)| p == y).count();
        }
        early.push(t0.elapsed().as_secs_f64());
    }
    ExitTiming {
        batch,
        images: n as usize,
        tau,
        repetitions: full.len(),
        full_depth_seconds: median(full),
        early_exit_seconds: median(early),
        early_exit_accuracy: 100.0 * correct as f64 / n.max(1) as f64,
    }
}

/// Thresholds swept for every run with exits (the accuracy-vs-MACs curve).
pub const SWEEP: [f64; 8] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn timing_answers_every_image_once_with_the_stopping_inference() {
        use crate::model::{exits::ExitsConfig, ModelConfig};
        tch::manual_seed(5);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig { exits: Some(ExitsConfig::default()), ..Default::default() };
        let net = Network::new(&vs.root(), &cfg, 10, crate::data::cifar::SHAPE).unwrap();
        let n = 23; // batches of 10: 10 + 10 + 3, the short last batch included
        let images = tch::Tensor::randn([n, 3, 32, 32], (Kind::Float, Device::Cpu)) * 3.0;
        let labels: Vec<i64> = (0..n).map(|i| i % 10).collect();
        let test = TestSet { images, labels: labels.clone() };
        // τ = 0: every image leaves at exit 1, so the accuracy is exit 1's arg-max accuracy.
        let t = time_early_exit(&net, &test, 10, 100, 0.0, 30.0, 3);
        assert_eq!((t.batch, t.images, t.repetitions), (10, 23, 3));
        let (preds, taken) = net.early_exit_predict(&test.images, 0.0, 30.0);
        assert!(taken.iter().all(|&k| k == 0));
        let correct = preds.iter().zip(&labels).filter(|(p, y)| p == y).count();
        assert!((t.early_exit_accuracy - 100.0 * correct as f64 / 23.0).abs() < 1e-9);
        assert!(t.full_depth_seconds > 0.0 && t.early_exit_seconds > 0.0);
    }

    #[test]
    fn exits_accuracy_and_macs_by_hand() {
        // 4 images, 2 classes, 3 exits. Costs 10 / 20 / 40 MACs; the plain network costs 35.
        let scores = ExitScores {
            confidence: vec![vec![0.95, 0.6, 0.5, 0.99], vec![0.5, 0.92, 0.5, 0.5], vec![0.7, 0.7, 0.7, 0.7]],
            prediction: vec![vec![0, 0, 0, 0], vec![1, 1, 1, 1], vec![1, 0, 1, 1]],
        };
        let labels = [0i64, 1, 1, 1];
        let groups = [Group::Many, Group::Few];
        let costs = CostModel { exit_costs: vec![10, 20, 40], plain: 35 };
        let r = early_exit_at(&scores, &labels, &groups, 2, &costs, 0.9);
        // exits taken: 0, 1, 2, 0 → predictions 0 (ok), 1 (ok), 1 (ok), 0 (wrong)
        assert_eq!(exit_taken(&scores, 0.9), vec![0, 1, 2, 0]);
        assert!((r.overall - 75.0).abs() < 1e-9);
        assert_eq!(r.exit_fractions, vec![0.5, 0.25, 0.25]);
        assert!((r.mean_macs - 20.0).abs() < 1e-9);
        assert!((r.saving - (1.0 - 20.0 / 35.0)).abs() < 1e-12);
        assert_eq!(r.exit_fractions_by_group[0], vec![1.0, 0.0, 0.0]);
        let third = 1.0 / 3.0;
        assert_eq!(r.exit_fractions_by_group[2], vec![third, third, third]);
        // τ above every confidence: everything runs to the end.
        let r = early_exit_at(&scores, &labels, &groups, 2, &costs, 0.999);
        assert_eq!(r.exit_fractions, vec![0.0, 0.0, 1.0]);
        assert!((r.mean_macs - 40.0).abs() < 1e-9 && r.saving < 0.0, "exit heads cost extra");
    }

    #[test]
    fn each_exit_alone_by_hand() {
        // Same scores: exit 1 always says 0, exit 2 always says 1; the final head is not repeated.
        let scores = ExitScores {
            confidence: vec![vec![0.9; 4], vec![0.9; 4], vec![0.9; 4]],
            prediction: vec![vec![0, 0, 0, 0], vec![1, 1, 1, 1], vec![1, 0, 1, 1]],
        };
        let alone = exits_alone(&scores, &[0, 1, 1, 1], &[Group::Many, Group::Few], 2);
        assert_eq!(alone.len(), 2);
        assert!((alone[0].overall - 25.0).abs() < 1e-9);
        assert_eq!(alone[0].per_class, vec![100.0, 0.0]);
        assert!((alone[1].overall - 75.0).abs() < 1e-9);
        assert_eq!((alone[1].many, alone[1].few), (Some(0.0), Some(100.0)));
    }
}
