//! `longtail bench`: the three throughputs `bench/run.sh` compares with PyTorch, measured on the
//! code paths that train and evaluate (the trainer's own step, loader and network).
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::{resolve, Config};
use crate::data::loader::EpochLoader;
use crate::loss::{Criterion, Targets};
use crate::model::channels_last;
use crate::train::step::{sgd_step, to_device};
use crate::train::trainer::{build, load_data};

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
    let mut m = build(cfg, o.device, 10)?;
    let criterion = Criterion::new(&cfg.loss, &[1; 10], o.device);
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

fn pipeline_rate(cfg: &Config, o: &BenchOptions) -> Result<f64> {
    let data = load_data(cfg, o.data_dir.as_deref())?;
    let criterion = Criterion::new(&cfg.loss, &data.train_counts, o.device);
    let train = Arc::new(data.train);
    let mut m = build(cfg, o.device, 10)?;
    let (mut done, mut seen, mut t0) = (0, 0, Instant::now());
    let mut epoch = 0;
    while done < o.pipeline_steps + 5 {
        let loader =
            EpochLoader::new(train.clone(), o.batch, true, Some(cfg.data.augment.clone()), 0, epoch, o.workers, 0);
        for batch in loader {
            if done == 5 {
                (t0, seen) = (Instant::now(), 0);
            }
            let (xs, targets) = to_device(&batch, o.device, cfg.train.channels_last);
            sgd_step(&m.net, &mut m.opt, &criterion, &xs, &targets, 0, 0.1).map_err(anyhow::Error::msg)?;
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
    let m = build(cfg, o.device, 10)?;
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
    Ok(BenchResult {
        engine: crate::run::engine_description(),
        threads: tch::get_num_threads(),
        train_step_nchw: train_step_rate(&nchw, o)?,
        train_pipeline_nchw: pipeline_rate(&nchw, o)?,
        inference_nchw: inference_rate(&nchw, o)?,
        train_step_channels_last: train_step_rate(&nhwc, o)?,
        train_pipeline_channels_last: pipeline_rate(&nhwc, o)?,
        inference_channels_last: inference_rate(&nhwc, o)?,
    })
}
