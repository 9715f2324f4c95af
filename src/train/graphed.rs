//! Training steps replayed from a CUDA graph (`train --cuda-graphs`, `bench --cuda-graphs`).
//!
//! On a large GPU a ResNet-32 step at batch 128 is bound by kernel launches, not arithmetic: the
//! GPU waits for the CPU to issue ~2,000 small kernels. A CUDA graph records the whole step —
//! forward, loss, backward, divergence check and SGD update — once, and then issues it with one
//! call. What the graph reads changes between replays only through tensors that stay in place:
//! the batch (copied into a fixed input buffer), the learning rate (a device scalar) and the
//! weights, gradients and momentum buffers themselves.
//!
//! The step inside the graph cannot stop halfway to report a NaN, so [`guarded_step`] computes a
//! device flag "loss and every gradient finite" and makes the update a no-op where it is false;
//! after the replay the host reads the flag, and the trainer stops exactly as the eager guard does
//! (no weight changed). Only fixed-shape steps can be captured: full batches of a model without
//! early exits (whose routing picks a data-dependent number of samples) and without Mixup (whose
//! λ changes every batch). Other batches — the short last batch of an epoch — run eagerly on the
//! same weights. DRW's switch of class weights changes the captured loss, so the step is captured
//! again when it happens, on the same stream. `longtail bench --cuda-graphs` checks graph against
//! eager steps from the same weights, across such a switch.
use tch::{Device, Kind, Tensor};

use crate::config::Config;

use crate::data::image::ImageShape;
use crate::data::loader::Batch;
use crate::loss::{BatchLoss, Criterion, Targets};
use crate::model::{channels_last, Network};
use crate::optim::sgd::Sgd;
use crate::train::cuda_graph::{CudaGraph, GraphError};
use crate::train::step::{non_finite_gradient, non_finite_loss, sgd_step, to_device, StepOutput};

/// Eager steps on the graph's stream before capture: they create every lazily made handle,
/// workspace and momentum buffer the captured step needs (PyTorch's recipe uses 3).
pub const WARMUP_STEPS: usize = 3;

/// What a guarded step leaves on the device.
pub struct GuardedOutputs {
    pub loss: BatchLoss,
    pub correct: Tensor,
    /// True when the loss and every gradient were finite, i.e. the update was applied.
    pub ok: Tensor,
}

/// One SGD step without any host synchronisation: the update happens only where the loss and
/// every gradient are finite. With a finite step its result equals [`sgd_step`]'s exactly.
pub fn guarded_step(
    net: &Network,
    opt: &mut Sgd,
    criterion: &Criterion,
    xs: &Tensor,
    targets: &Targets,
    epoch: usize,
    lr: &Tensor,
) -> Result<GuardedOutputs, String> {
    let out = net.forward(xs, true);
    let loss = criterion.batch_loss(net, &out, targets, epoch);
    opt.zero_grad();
    loss.total.backward();
    let ok = loss.total.isfinite().logical_and(&opt.gradients_finite());
    opt.step_guarded(lr, &ok)?;
    Ok(GuardedOutputs { correct: targets.correct_count(&out.logits), loss, ok })
}

impl GuardedOutputs {
    /// What the host reads after a step, detached from autograd: the loss terms (for a
    /// divergence message) and `[loss, correct, ok]` in one double tensor, so that a step costs one
    /// device-to-host copy. Detaching matters for a captured step: its autograd nodes recorded
    /// the capture stream and must not outlive the capture.
    pub fn for_host(&self) -> (BatchLoss, Tensor) {
        let terms = self.loss.terms.iter().map(|(n, t)| (n.clone(), t.detach())).collect();
        let total = self.loss.total.detach();
        let summary = Tensor::stack(&[total.shallow_clone(), self.correct.detach(), self.ok.to_kind(Kind::Float)], 0)
            .to_kind(Kind::Double);
        (BatchLoss { total, terms, exit_counts: None }, summary)
    }
}

/// Why a run cannot be trained from a graph, if it cannot.
pub fn unsupported_reason(cfg: &Config, device: Device) -> Option<String> {
    // What the model needs first: it holds on every machine.
    if cfg.model.exits.is_some() {
        return Some("models with early exits route a data-dependent number of samples to each exit, which a CUDA graph cannot capture".into());
    }
    if cfg.train.precision != crate::model::precision::Precision::Fp32 {
        return Some(
            "bf16 autocast is not captured in graphs yet: train with precision = \"fp32\" or without graphs".into(),
        );
    }
    if cfg.data.augment.mixup > 0.0 {
        return Some("Mixup draws a new λ for every batch, which a captured step would freeze".into());
    }
    if !CudaGraph::SUPPORTED {
        return CudaGraph::new(0).err().map(|e| e.to_string());
    }
    not_cuda(device)
}

fn not_cuda(device: Device) -> Option<String> {
    (!device.is_cuda()).then(|| format!("CUDA graphs need a CUDA device, and this run is on {device:?}"))
}

/// One training step on a batch: replayed from the graph when there is one and it takes the
/// batch, else eager. The outer error is a graph failure, the inner one the divergence guard's.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    graphed: Option<&mut GraphedStep>,
    net: &Network,
    opt: &mut Sgd,
    criterion: &Criterion,
    batch: &Batch,
    device: Device,
    nhwc: bool,
    epoch: usize,
    lr: f64,
) -> Result<Result<StepOutput, String>, GraphError> {
    match graphed.filter(|g| g.accepts(batch)) {
        Some(g) => g.step(net, opt, criterion, batch, epoch, lr),
        None => {
            let (xs, targets) = to_device(batch, device, nhwc);
            Ok(sgd_step(net, opt, criterion, &xs, &targets, epoch, lr))
        }
    }
}

struct Captured {
    /// Detached loss terms and `[loss, correct, ok]` (see [`GuardedOutputs::for_host`]): tensors
    /// in the graph's memory that every replay rewrites.
    terms: BatchLoss,
    summary: Tensor,
    /// Whether the captured loss uses DRW class weights.
    drw: bool,
}

/// Full batches replayed from a graph; see the module documentation.
pub struct GraphedStep {
    batch: usize,
    shape: ImageShape,
    xs: Tensor,
    ys: Tensor,
    lr: Tensor,
    graph: CudaGraph,
    captured: Option<Captured>,
    warmup_left: usize,
}

impl GraphedStep {
    pub fn new(device: Device, batch: usize, shape: ImageShape, nhwc: bool) -> Result<Self, GraphError> {
        let Device::Cuda(index) = device else {
            return Err(GraphError(not_cuda(device).unwrap_or_default()));
        };
        let xs = Tensor::zeros(shape.batch_dims(batch), (Kind::Float, device));
        Ok(GraphedStep {
            batch,
            shape,
            xs: if nhwc { channels_last(&xs) } else { xs },
            ys: Tensor::zeros([batch as i64], (Kind::Int64, device)),
            lr: Tensor::zeros([], (Kind::Float, device)),
            graph: CudaGraph::new(index)?,
            captured: None,
            warmup_left: WARMUP_STEPS,
        })
    }

    /// Whether this batch can go through the graph (full size, no Mixup).
    pub fn accepts(&self, batch: &Batch) -> bool {
        batch.len() == self.batch && batch.shape == self.shape && batch.mix.is_none()
    }

    /// One step on a batch that [`GraphedStep::accepts`]: a warm-up step, the capture (followed by
    /// its first replay) or a replay. The outer error is a graph failure, the inner one the
    /// divergence guard's message, as from [`sgd_step`].
    pub fn step(
        &mut self,
        net: &Network,
        opt: &mut Sgd,
        criterion: &Criterion,
        batch: &Batch,
        epoch: usize,
        lr: f64,
    ) -> Result<Result<StepOutput, String>, GraphError> {
        let n = batch.len() as i64;
        self.xs.copy_(&Tensor::from_slice(&batch.images).view(self.shape.batch_dims(n as usize)));
        self.ys.copy_(&Tensor::from_slice(&batch.labels));
        let drw = criterion.class_weights(epoch).is_some();
        if self.captured.as_ref().is_some_and(|c| c.drw != drw) {
            // The loss changed (DRW switched on): record the step again on the same stream, whose
            // handles and workspaces the warm-up created.
            self.graph.reset()?;
            self.captured = None;
        }
        let targets = Targets::plain(self.ys.shallow_clone());
        if self.warmup_left > 0 {
            self.warmup_left -= 1;
            self.graph.enter()?;
            let out = sgd_step(net, opt, criterion, &self.xs, &targets, epoch, lr);
            self.graph.leave()?;
            return Ok(out);
        }
        let _ = self.lr.fill_(lr);
        if self.captured.is_none() {
            // Checked before the capture starts: a failure inside it would leave the stream
            // capturing.
            opt.buffers_ready().map_err(GraphError)?;
            self.graph.enter()?;
            self.graph.capture_begin()?;
            let outputs = guarded_step(net, opt, criterion, &self.xs, &targets, epoch, &self.lr).map_err(GraphError)?;
            let (terms, summary) = outputs.for_host();
            drop(outputs);
            self.graph.capture_end()?;
            self.graph.leave()?;
            self.captured = Some(Captured { terms, summary, drw });
        }
        self.graph.replay()?;
        let c = self.captured.as_ref().expect("captured above");
        Ok(read_outputs(&c.summary, &c.terms, opt))
    }
}

/// The host's view of a guarded step from its [`GuardedOutputs::for_host`] parts: its loss and
/// hits, or the divergence message the eager step would have given (the update was not applied).
pub fn read_outputs(summary: &Tensor, terms: &BatchLoss, opt: &Sgd) -> Result<StepOutput, String> {
    let v = Vec::<f64>::try_from(&summary.to_device(Device::Cpu)).expect("a 1-D double tensor of 3 values");
    let (value, correct, ok) = (v[0], v[1], v[2]);
    if ok == 0.0 {
        if !value.is_finite() {
            return Err(non_finite_loss(terms, value));
        }
        let param = opt.non_finite_gradient().unwrap_or_else(|| "a parameter".into());
        return Err(non_finite_gradient(&param, terms, value));
    }
    // Captured steps have no exits (refused by `unsupported_reason`).
    Ok(StepOutput { loss: value, correct, exit_counts: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, Config};
    use crate::train::setup::{build, Session};

    fn config(extra: &[&str]) -> Config {
        let mut o: Vec<String> =
            ["model.arch=\"resnet20\"", "model.widths=[6, 6, 6]"].iter().map(|s| s.to_string()).collect();
        o.extend(extra.iter().map(|s| s.to_string()));
        resolve("device = \"cpu\"\n[train]\nrecipe = \"ldam\"\n", "test", &o).unwrap()
    }

    fn batch(seed: u64) -> (Tensor, Targets) {
        tch::manual_seed(seed as i64);
        let xs = channels_last(&Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu)));
        (xs, Targets::plain(Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 9])))
    }

    fn weights(s: &Session) -> Vec<(String, Tensor)> {
        let mut w = s.vs.variables().into_iter().collect::<Vec<_>>();
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    }

    /// The step a graph captures gives exactly the eager step's loss and weights, for a plain CE
    /// head, a grouped ResLT head with label smoothing, and LDAM with DRW class weights (Nesterov).
    #[test]
    fn guarded_step_equals_the_eager_step_exactly() {
        let cases: [&[&str]; 3] = [
            &["loss.kind=\"ce\""],
            &["model.head=\"grouped\"", "loss.kind=\"reslt\"", "loss.label_smoothing=0.1"],
            &["model.head=\"cosine\"", "loss.kind=\"ldam\"", "loss.drw_epoch=0", "train.nesterov=true"],
        ];
        for extra in cases {
            let cfg = config(extra);
            let counts = [50, 40, 30, 20, 10, 8, 6, 4, 2, 1];
            let mut a = build(&cfg, Device::Cpu, 10, crate::data::cifar::SHAPE).unwrap();
            let mut b = build(&cfg, Device::Cpu, 10, crate::data::cifar::SHAPE).unwrap();
            // The same starting weights whatever other tests draw from libtorch's generator.
            b.vs.copy(&a.vs).unwrap();
            let criterion = Criterion::new(&cfg.loss, &a.net, &counts, Device::Cpu).unwrap();
            let lr = Tensor::zeros([], (Kind::Float, Device::Cpu));
            for step in 0..4 {
                let (xs, targets) = batch(step);
                let ea = sgd_step(&a.net, &mut a.opt, &criterion, &xs, &targets, 1, 0.05).unwrap();
                let eb = if step == 0 {
                    // The first step creates the momentum buffers (warm-up, as before a capture).
                    sgd_step(&b.net, &mut b.opt, &criterion, &xs, &targets, 1, 0.05).unwrap()
                } else {
                    let _ = lr.shallow_clone().fill_(0.05);
                    let o = guarded_step(&b.net, &mut b.opt, &criterion, &xs, &targets, 1, &lr).unwrap();
                    let (terms, summary) = o.for_host();
                    read_outputs(&summary, &terms, &b.opt).unwrap()
                };
                assert_eq!(ea.loss, eb.loss, "{extra:?} step {step}");
                assert_eq!(ea.correct, eb.correct, "{extra:?} step {step}");
            }
            for ((na, ta), (nb, tb)) in weights(&a).iter().zip(&weights(&b)) {
                assert_eq!(na, nb);
                assert!(ta.equal(tb), "{extra:?}: {na} differs");
            }
        }
    }

    #[test]
    fn a_non_finite_guarded_step_changes_nothing_and_names_the_term() {
        let cfg = config(&["loss.kind=\"ce\""]);
        let mut s = build(&cfg, Device::Cpu, 10, crate::data::cifar::SHAPE).unwrap();
        let criterion = Criterion::new(&cfg.loss, &s.net, &[1; 10], Device::Cpu).unwrap();
        let lr = Tensor::from(0.1f32);
        let (xs, targets) = batch(0);
        let err = guarded_step(&s.net, &mut s.opt, &criterion, &xs, &targets, 0, &lr).err().unwrap();
        assert!(err.contains("does not exist yet"), "{err}");
        sgd_step(&s.net, &mut s.opt, &criterion, &xs, &targets, 0, 0.1).unwrap();
        // Trainable weights: the forward pass has already folded the NaN batch into BatchNorm's
        // running statistics, as in the eager guard; the run stops and its checkpoint is intact.
        let trainable = |s: &Session| weights(s).into_iter().filter(|(_, t)| t.requires_grad()).collect::<Vec<_>>();
        let before = trainable(&s).into_iter().map(|(n, t)| (n, t.copy())).collect::<Vec<_>>();
        let nan_xs = xs.full_like(f64::NAN);
        let o = guarded_step(&s.net, &mut s.opt, &criterion, &nan_xs, &targets, 0, &lr).unwrap();
        let (terms, summary) = o.for_host();
        let err = read_outputs(&summary, &terms, &s.opt).err().unwrap();
        assert!(err.contains("the loss is NaN") && err.contains("final head (ce) = NaN"), "{err}");
        for ((n, t0), (_, t1)) in before.iter().zip(&trainable(&s)) {
            assert!(t0.equal(t1), "{n} changed in a step that should have been skipped");
        }
        let bufs = s.opt.buffers();
        assert!(bufs.iter().all(|(_, b)| b.isfinite().all().int64_value(&[]) == 1), "momentum buffers stay finite");
    }

    #[test]
    fn graphs_are_refused_with_a_reason() {
        let cfg = config(&["loss.kind=\"ce\""]);
        let why = unsupported_reason(&cfg, Device::Cpu).unwrap();
        assert!(why.contains("LONGTAIL_CUDA=1") || why.contains("CUDA device"), "{why}");
        assert!(GraphedStep::new(Device::Cpu, 8, crate::data::cifar::SHAPE, true).is_err());
    }
}
