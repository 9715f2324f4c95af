//! `longtail bench`: the three throughputs `bench/run.sh` compares with PyTorch, measured on the
//! code paths that train and evaluate (the trainer's own step, loader and network).
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::{resolve, Config};
use crate::data::loader::{Batch, EpochLoader};
use crate::loss::{Criterion, Targets};
use crate::model::channels_last;
use crate::model::precision::{self, Precision};
use crate::train::graphed::{train_step, GraphedStep, WARMUP_STEPS};
use crate::train::setup::{build, load_data};
use crate::train::step::{sgd_step, to_device};

/// What to measure.
pub struct BenchOptions {
    pub device: Device,
    pub batch: usize,
    /// Timed steps of the synthetic training step (after 5 warm-up steps).
    pub steps: usize,
    /// Timed steps of the real pipeline (after 5 warm-up steps).
    pub pipeline_steps: usize,
    pub eval_batch: usize,
    pub workers: usize,
    pub data_dir: Option<std::path::PathBuf>,
    /// Also measure the training step and pipeline replayed from a CUDA graph (CUDA builds on a
    /// GPU), and check the graph against eager steps.
    pub cuda_graphs: bool,
}

/// Images per second, by measurement and memory layout (the same keys as bench/torch_bench.py).
#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub engine: String,
    pub threads: i32,
    pub train_step_nchw: f64,
    pub train_pipeline_nchw: f64,
    pub inference_nchw: f64,
    pub train_step_channels_last: f64,
    pub train_pipeline_channels_last: f64,
    pub inference_channels_last: f64,
    /// CUDA graphs (channels-last), with `--cuda-graphs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_step_graphed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_pipeline_graphed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_check: Option<GraphCheck>,
    /// bf16 autocast training step (channels-last), where the device does bf16 natively.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_step_channels_last_bf16_autocast: Option<f64>,
}

/// The same steps eager and from a graph, from the same initial weights: how far they end apart.
#[derive(Debug, Serialize)]
pub struct GraphCheck {
    pub steps: usize,
    pub max_loss_difference: f64,
    pub max_weight_difference: f64,
}

/// The CE baseline's model and loss (configs/ce.toml without the file): ResNet-32, linear head.
fn bench_config(nhwc: bool, workers: usize) -> Result<Config> {
    let text = format!(
        "name = \"bench\"\n[data]\nrho = 100\n[loss]\nkind = \"ce\"\n[train]\nrecipe = \"ldam\"\n\
         channels_last = {nhwc}\nworkers = {workers}\n"
    );
    Ok(resolve(&text, "bench", &[])?)
}

fn train_step_rate(cfg: &Config, o: &BenchOptions) -> Result<f64> {
    let mut m = build(cfg, o.device, 10, crate::data::cifar::SHAPE)?;
    let criterion = Criterion::new(&cfg.loss, &m.net, &[1; 10], o.device)?;
    let xs = Tensor::randn([o.batch as i64, 3, 32, 32], (Kind::Float, o.device));
    let xs = if cfg.train.channels_last { channels_last(&xs) } else { xs };
    let ys = Tensor::randint(10, [o.batch as i64], (Kind::Int64, o.device));
    let targets = Targets::plain(ys);
    let mut run = |n: usize| -> Result<()> {
        for _ in 0..n {
            sgd_step(&m.net, &mut m.opt, &criterion, &xs, &targets, 0, 0.1).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    };
    run(5)?;
    let t0 = Instant::now();
    run(o.steps)?;
    Ok((o.batch * o.steps) as f64 / t0.elapsed().as_secs_f64())
}

/// The training step in bf16 autocast, or None where the device has no native bf16.
fn bf16_step_rate(cfg: &Config, o: &BenchOptions) -> Result<Option<f64>> {
    // Only a CPU without native bf16 skips the row; any other refusal is a broken build.
    match precision::check(Precision::Bf16, o.device) {
        Err(precision::PrecisionError::NoBf16Cpu) => return Ok(None),
        other => other?,
    }
    let mut cfg = cfg.clone();
    cfg.train.precision = Precision::Bf16;
    train_step_rate(&cfg, o).map(Some)
}

/// A fixed random batch on the host, as the loader would hand it over.
fn synthetic_batch(n: usize, seed: u64) -> Batch {
    let mut rng = crate::data::rng::Rng::from_keys(&[seed]);
    Batch {
        images: (0..n * 3 * 32 * 32).map(|_| rng.unit() as f32 * 2.0 - 1.0).collect(),
        labels: (0..n).map(|_| rng.below(10) as i64).collect(),
        mix: None,
        shape: crate::data::cifar::SHAPE,
    }
}

fn graphed_step_rate(cfg: &Config, o: &BenchOptions) -> Result<f64> {
    let mut m = build(cfg, o.device, 10, crate::data::cifar::SHAPE)?;
    let criterion = Criterion::new(&cfg.loss, &m.net, &[1; 10], o.device)?;
    let batch = synthetic_batch(o.batch, 1);
    let mut g = GraphedStep::new(o.device, o.batch, crate::data::cifar::SHAPE, cfg.train.channels_last)?;
    let mut run = |n: usize| -> Result<()> {
        for _ in 0..n {
            g.step(&m.net, &mut m.opt, &criterion, &batch, 0, 0.1)?.map_err(anyhow::Error::msg)?;
        }
        Ok(())
    };
    run(WARMUP_STEPS + 2)?;
    let t0 = Instant::now();
    run(o.steps)?;
    Ok((o.batch * o.steps) as f64 / t0.elapsed().as_secs_f64())
}

/// Eager and graphed training from the same weights on the same batches: warm-up, capture and
/// replays at epoch 0, then DRW class weights from epoch 1, which makes the graph record the step
/// again.
fn graph_check(cfg: &Config, o: &BenchOptions) -> Result<GraphCheck> {
    let mut cfg = cfg.clone();
    cfg.loss.drw.drw_epoch = Some(1);
    let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
    let epochs: Vec<usize> = (0..WARMUP_STEPS + 3).map(|_| 0).chain([1, 1, 1]).collect();
    let mut eager = build(&cfg, o.device, 10, crate::data::cifar::SHAPE)?;
    let criterion = Criterion::new(&cfg.loss, &eager.net, &counts, o.device)?;
    let mut graphed = build(&cfg, o.device, 10, crate::data::cifar::SHAPE)?;
    let mut g = GraphedStep::new(o.device, o.batch, crate::data::cifar::SHAPE, cfg.train.channels_last)?;
    let mut max_loss_difference = 0.0f64;
    for (i, &epoch) in epochs.iter().enumerate() {
        let b = synthetic_batch(o.batch, 100 + i as u64);
        let (xs, targets) = to_device(&b, o.device, cfg.train.channels_last);
        let a =
            sgd_step(&eager.net, &mut eager.opt, &criterion, &xs, &targets, epoch, 0.1).map_err(anyhow::Error::msg)?;
        let c = g.step(&graphed.net, &mut graphed.opt, &criterion, &b, epoch, 0.1)?.map_err(anyhow::Error::msg)?;
        max_loss_difference = max_loss_difference.max((a.loss - c.loss).abs());
    }
    let (we, wg) = (eager.vs.variables(), graphed.vs.variables());
    let max_weight_difference =
        we.iter().map(|(name, t)| (t - &wg[name]).abs().max().double_value(&[])).fold(0.0f64, f64::max);
    Ok(GraphCheck { steps: epochs.len(), max_loss_difference, max_weight_difference })
}

fn pipeline_rate(cfg: &Config, o: &BenchOptions, graphs: bool) -> Result<f64> {
    let data = load_data(cfg, o.data_dir.as_deref())?;
    let train = Arc::new(data.train);
    let mut m = build(cfg, o.device, 10, crate::data::cifar::SHAPE)?;
    let criterion = Criterion::new(&cfg.loss, &m.net, &data.train_counts, o.device)?;
    let mut graphed = if graphs {
        Some(GraphedStep::new(o.device, o.batch, crate::data::cifar::SHAPE, cfg.train.channels_last)?)
    } else {
        None
    };
    let (mut done, mut seen, mut t0) = (0, 0, Instant::now());
    let mut epoch = 0;
    while done < o.pipeline_steps + 5 {
        let loader =
            EpochLoader::new(train.clone(), o.batch, true, Some(cfg.data.augment.clone()), 0, epoch, o.workers, 0);
        for batch in loader {
            if done == 5 {
                (t0, seen) = (Instant::now(), 0);
            }
            let nhwc = cfg.train.channels_last;
            train_step(graphed.as_mut(), &m.net, &mut m.opt, &criterion, &batch, o.device, nhwc, 0, 0.1)?
                .map_err(anyhow::Error::msg)?;
            done += 1;
            seen += batch.len();
            if done >= o.pipeline_steps + 5 {
                break;
            }
        }
        epoch += 1;
    }
    Ok(seen as f64 / t0.elapsed().as_secs_f64())
}

fn inference_rate(cfg: &Config, o: &BenchOptions) -> Result<f64> {
    let m = build(cfg, o.device, 10, crate::data::cifar::SHAPE)?;
    let _guard = tch::no_grad_guard();
    let xs = Tensor::randn([o.eval_batch as i64, 3, 32, 32], (Kind::Float, o.device));
    let xs = if cfg.train.channels_last { channels_last(&xs) } else { xs };
    let steps = (o.steps / 4).max(4);
    for _ in 0..2 {
        let _ = m.net.forward(&xs, false).logits.argmax(-1, false).int64_value(&[0]);
    }
    let t0 = Instant::now();
    for _ in 0..steps {
        let _ = m.net.forward(&xs, false).logits.argmax(-1, false).int64_value(&[0]);
    }
    Ok((o.eval_batch * steps) as f64 / t0.elapsed().as_secs_f64())
}

/// Measure everything, NCHW first, then channels-last (longtail's default).
pub fn run(o: &BenchOptions) -> Result<BenchResult> {
    crate::train::memory::keep_freed_memory();
    let (nchw, nhwc) = (bench_config(false, o.workers)?, bench_config(true, o.workers)?);
    let graphs = o.cuda_graphs;
    if let Some(why) = graphs.then(|| crate::train::graphed::unsupported_reason(&nhwc, o.device)).flatten() {
        anyhow::bail!("--cuda-graphs: {why}");
    }
    Ok(BenchResult {
        engine: crate::store::engine_description(),
        threads: tch::get_num_threads(),
        train_step_nchw: train_step_rate(&nchw, o)?,
        train_pipeline_nchw: pipeline_rate(&nchw, o, false)?,
        inference_nchw: inference_rate(&nchw, o)?,
        train_step_channels_last: train_step_rate(&nhwc, o)?,
        train_pipeline_channels_last: pipeline_rate(&nhwc, o, false)?,
        inference_channels_last: inference_rate(&nhwc, o)?,
        train_step_graphed: graphs.then(|| graphed_step_rate(&nhwc, o)).transpose()?,
        train_pipeline_graphed: graphs.then(|| pipeline_rate(&nhwc, o, true)).transpose()?,
        graph_check: graphs.then(|| graph_check(&nhwc, o)).transpose()?,
        train_step_channels_last_bf16_autocast: bf16_step_rate(&nhwc, o)?,
    })
}
