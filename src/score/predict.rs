//! Running a network over the test set, and scoring what it predicts.
use tch::{Device, Kind, Tensor};

use super::metrics::{evaluate_predictions, Accuracy, Evaluation, Group};
use crate::data::augment::normalise;
use crate::data::image::ImageSet;
use crate::model::{channels_last, Network};

/// The test set, normalised once and kept on the training device.
pub struct TestSet {
    pub images: Tensor,
    pub labels: Vec<i64>,
}

impl TestSet {
    pub fn new(set: &ImageSet, device: Device, nhwc: bool) -> Self {
        let bytes = set.shape.bytes();
        let mut buf = vec![0f32; set.len() * bytes];
        for (i, out) in buf.chunks_exact_mut(bytes).enumerate() {
            normalise(set.image(i), out, set.shape, &set.stats);
        }
        let images = Tensor::from_slice(&buf).view(set.shape.batch_dims(set.len())).to_device(device);
        let images = if nhwc { channels_last(&images) } else { images };
        TestSet { images, labels: set.labels.iter().map(|&l| l as i64).collect() }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Arg-max predictions on the test set: of the final (fused) logits, and of each ResLT branch
/// alone when the head has branches, so users can see which branch carries the tail.
pub struct Predictions {
    pub fused: Vec<i64>,
    pub branches: Option<[Vec<i64>; 3]>,
}

fn argmax_cpu(logits: &Tensor) -> Vec<i64> {
    let p = logits.argmax(-1, false).to_kind(Kind::Int64).to_device(Device::Cpu);
    Vec::<i64>::try_from(&p).expect("predictions are int64")
}

/// Predictions of `net` (eval mode, no gradients) on every test image.
pub fn predict(net: &Network, test: &TestSet, batch_size: usize) -> Predictions {
    let _guard = tch::no_grad_guard();
    let n = test.len() as i64;
    let mut fused = Vec::with_capacity(test.len());
    let mut branches: Option<[Vec<i64>; 3]> = None;
    let mut start = 0;
    while start < n {
        let len = (batch_size as i64).min(n - start);
        let xs = test.images.narrow(0, start, len);
        let out = net.forward(&xs, false);
        fused.extend(argmax_cpu(&out.logits));
        if let Some(b) = &out.branches {
            let acc = branches.get_or_insert_with(Default::default);
            for (k, preds) in acc.iter_mut().enumerate() {
                preds.extend(argmax_cpu(&b.get(k as i64)));
            }
        }
        start += len;
    }
    Predictions { fused, branches }
}

/// A network's predictions on a set of images, scored: the fused prediction (accuracy and
/// confusion matrix) and, for heads with ResLT branches, each branch alone.
pub struct Scored {
    pub fused: Evaluation,
    pub branches: Option<Vec<Accuracy>>,
}

/// Predict every image of `set` and score the predictions, per group as `groups` assigns the
/// classes. The one path by which training, `eval` and `select` turn weights into accuracy.
pub fn score(net: &Network, set: &TestSet, batch_size: usize, num_classes: usize, groups: &[Group]) -> Scored {
    let preds = predict(net, set, batch_size);
    let accuracy = |p: &[i64]| evaluate_predictions(p, &set.labels, num_classes, groups).accuracy;
    let branches = preds.branches.as_ref().map(|bs| bs.iter().map(|p| accuracy(p)).collect());
    Scored { fused: evaluate_predictions(&preds.fused, &set.labels, num_classes, groups), branches }
}
