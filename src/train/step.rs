//! One SGD step on one batch: the unit the trainer repeats and `longtail bench` times, so the
//! benchmark measures exactly the code that trains.
use tch::{Device, Tensor};

use crate::data::loader::Batch;
use crate::loss::{BatchLoss, Criterion, Targets};
use crate::model::{channels_last, Network};
use crate::train::sgd::Sgd;

/// A batch moved to the training device: images (NHWC strides when `nhwc`) and targets.
pub fn to_device(batch: &Batch, device: Device, nhwc: bool) -> (Tensor, Targets) {
    let n = batch.len() as i64;
    let xs = Tensor::from_slice(&batch.images).view([n, 3, 32, 32]).to_device(device);
    let xs = if nhwc { channels_last(&xs) } else { xs };
    let ys = Tensor::from_slice(&batch.labels).to_device(device);
    let targets = match &batch.mix {
        Some(m) => Targets::mixed(ys, Tensor::from_slice(&m.partner_labels).to_device(device), m.lambda),
        None => Targets::plain(ys),
    };
    (xs, targets)
}

/// What one step measured.
pub struct StepOutput {
    pub loss: f64,
    /// Correct training predictions (λ-weighted under Mixup).
    pub correct: f64,
    /// With early exits: samples of each class leaving at each exit in this step, `[K][C]`;
    /// empty without exits.
    pub exit_counts: Vec<Vec<f64>>,
}

/// Forward, loss, backward and SGD update. A non-finite loss or gradient returns `Err` with what
/// went wrong (the term or the parameter) before any weight changes: the divergence guard.
pub fn sgd_step(
    net: &Network,
    opt: &mut Sgd,
    criterion: &Criterion,
    xs: &Tensor,
    targets: &Targets,
    epoch: usize,
    lr: f64,
) -> Result<StepOutput, String> {
    let out = net.forward(xs, true);
    let loss = criterion.batch_loss(net, &out, targets, epoch);
    let value = loss.total.double_value(&[]);
    if !value.is_finite() {
        return Err(non_finite_loss(&loss, value));
    }
    opt.zero_grad();
    loss.total.backward();
    if let Some(param) = opt.non_finite_gradient() {
        return Err(non_finite_gradient(&param, &loss, value));
    }
    opt.step(lr);
    let exit_counts = loss.exit_counts.as_ref().map_or_else(Vec::new, |c| {
        Vec::<Vec<f32>>::try_from(c)
            .map(|rows| rows.into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect())
            .unwrap_or_default()
    });
    Ok(StepOutput { loss: value, correct: targets.correct(&out.logits), exit_counts })
}

/// The divergence guard's message for a loss that is not finite.
pub fn non_finite_loss(loss: &BatchLoss, value: f64) -> String {
    format!("the loss is {value} (non-finite terms: {})", loss.non_finite_terms().join(", "))
}

/// The divergence guard's message for a gradient that is not finite.
pub fn non_finite_gradient(param: &str, loss: &BatchLoss, value: f64) -> String {
    let terms: Vec<String> = loss.terms.iter().map(|(n, t)| format!("{n} = {:.4}", t.double_value(&[]))).collect();
    format!("the gradient of {param} is not finite (loss {value:.4}, terms: {})", terms.join(", "))
}
