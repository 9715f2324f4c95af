//! The training loop: epochs of SGD steps, evaluation on the cadence of the config, a checkpoint
//! after every epoch, `--resume`, and a guard that stops cleanly on a non-finite loss.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tch::{nn, Device, Tensor};

use crate::config::Config;
use crate::data::cifar::{self, ImageSet};
use crate::data::loader::{batches_per_epoch, EpochLoader};
use crate::data::pack;
use crate::data::subset::long_tailed_indices;
use crate::loss::Criterion;
use crate::model::{precision, Network};
use crate::optim::sgd::Sgd;
use crate::run::{self, EpochRecord, EpochScore, GroupsInfo, Resume, RunDir, RunMeta, Summary, TrainState};
use crate::score::early_exit::{early_exit_at, exit_scores, exits_alone, SWEEP};
use crate::score::metrics::{evaluate_predictions, exit_fractions, fmt_group, Accuracy, Evaluation};
use crate::score::predict::{predict, TestSet};
use crate::store;
use crate::train::checkpoint;
use crate::train::fork;
use crate::train::graphed::{self, GraphedStep};

/// How to run a training, beyond the config itself.
pub struct TrainOptions {
    pub run_dir: PathBuf,
    pub resume: bool,
    pub data_dir: Option<PathBuf>,
    pub config_path: Option<String>,
    pub command: String,
    /// Print one line per epoch instead of drawing progress bars.
    pub plain: bool,
    /// Stop (cleanly, resumable) after this many epochs in this invocation.
    pub stop_after: Option<usize>,
    /// libtorch threads for this invocation (wins over `train.threads`; not part of the config,
    /// so a run can resume with a different thread count).
    pub threads: Option<usize>,
    /// Replay full training batches from a CUDA graph (src/train/graphed.rs). A run-time choice
    /// like the device: the captured step computes what the eager step computes.
    pub cuda_graphs: bool,
    /// Start a new run from this run's last checkpoint (`train --fork-from`, src/train/fork.rs).
    pub fork_from: Option<PathBuf>,
    /// From this epoch on, also keep each epoch's weights (`run::kept_weights_file`), which the
    /// rolling checkpoint deletes, for `eval --average-from`. It changes no number of the run,
    /// so it is an invocation option like `threads`, not a config key.
    pub keep_weights_from: Option<usize>,
}

/// Parse `auto`, `cpu`, `cuda` or `cuda:N`; a CUDA device that libtorch cannot see is an error
/// here rather than a libtorch failure on the first tensor.
pub fn resolve_device(spec: &str) -> Result<Device> {
    let device = match spec {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s if s.starts_with("cuda:") => {
            Device::Cuda(s[5..].parse().with_context(|| format!("device = {s:?}: expected cuda:N"))?)
        }
        s => bail!("device = {s:?} is not known; use auto, cpu, cuda or cuda:N"),
    };
    if let Device::Cuda(i) = device {
        let visible = tch::Cuda::device_count();
        if visible == 0 {
            bail!(
                "device = {spec:?}, but libtorch sees no CUDA device; a GPU build needs \
                 LONGTAIL_CUDA=1 at build time and the CUDA libtorch at run time (README, \"GPU\")"
            );
        }
        if i as i64 >= visible {
            bail!(
                "device = {spec:?} is out of range: libtorch sees {visible} CUDA device(s), cuda:0 to cuda:{}",
                visible - 1
            );
        }
    }
    Ok(device)
}

/// The long-tailed training subset and the balanced test set of a config.
pub struct RunData {
    pub train: ImageSet,
    pub test: ImageSet,
    pub train_counts: Vec<usize>,
}

pub fn load_data(cfg: &Config, data_dir: Option<&Path>) -> Result<RunData> {
    let kind = cfg.data.dataset;
    let (train, dir) = match pack::find(kind, data_dir) {
        // A packed dataset (`longtail data pack`) already holds exactly the kept images.
        Some((dir, card)) => (pack::load_train(kind, &dir, &card, cfg.data.rho, cfg.data.subset_seed)?, dir),
        None => {
            let dir = cifar::find_dir(kind, data_dir)?;
            let full = cifar::load_train(kind, &dir)?;
            let kept = if cfg.data.rho > 1.0 {
                long_tailed_indices(&full.labels, full.num_classes, cfg.data.rho, cfg.data.subset_seed)
            } else {
                (0..full.len()).collect()
            };
            (full.select(&kept), dir)
        }
    };
    let mut kept: Vec<usize> = (0..train.len()).collect();
    if let Some(cap) = cfg.data.max_per_class {
        let mut taken = vec![0usize; train.num_classes];
        kept.retain(|&i| {
            let c = train.labels[i] as usize;
            taken[c] += 1;
            taken[c] <= cap
        });
    }
    let train = train.select(&kept);
    let mut test = cifar::load_test(kind, &dir)?;
    if let Some(n) = cfg.eval.max_test_images {
        test = test.select(&(0..n.min(test.len())).collect::<Vec<_>>());
    }
    let train_counts = train.class_counts();
    Ok(RunData { train, test, train_counts })
}

/// Everything `train` keeps between epochs.
pub struct Session {
    pub vs: nn::VarStore,
    pub net: Network,
    pub opt: Sgd,
}

/// The network (seeded, in the configured layout) and its optimiser, as a run starts them.
pub fn build(cfg: &Config, device: Device, num_classes: usize) -> Result<Session> {
    // Also checked here for callers other than `train` (bench, tests): before any weight exists.
    precision::check(cfg.train.precision, device)?;
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let mut net = Network::new(&vs.root(), &cfg.model, num_classes as i64)?;
    net.set_train_precision(cfg.train.precision);
    if cfg.train.channels_last {
        Network::to_channels_last(&vs);
    }
    let params: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    let opt = Sgd::new(params, cfg.train.momentum, cfg.train.weight_decay, cfg.train.nesterov);
    Ok(Session { vs, net, opt })
}

fn ckpt_name(epochs_done: usize) -> String {
    format!("ckpt-{epochs_done:04}.ot")
}

/// Prepare (or reopen) the run directory. Returns the saved state when resuming.
fn open_run_dir(cfg: &Config, opts: &TrainOptions, meta: &RunMeta) -> Result<(RunDir, Option<TrainState>)> {
    let dir = RunDir::new(&opts.run_dir);
    let config_text = cfg.to_toml();
    if dir.exists(run::STATE_FILE) || dir.exists(run::CONFIG_FILE) {
        if !opts.resume {
            bail!(
                "run directory {} already holds a run; pass --resume to continue it, or choose another --out",
                dir.path.display()
            );
        }
        // Compare resolved configs, not text: a run saved by an older longtail (before some
        // keys existed) resumes as long as every setting, defaults included, is the same.
        let saved_path = dir.file(run::CONFIG_FILE);
        let saved = std::fs::read_to_string(&saved_path).unwrap_or_default();
        // The device is where the run executes, not what it computes: a run started on a GPU
        // may finish on a CPU (`--device`), so it is left out of the comparison.
        let same = crate::config::resolve(&saved, &saved_path.display().to_string(), &[])
            .is_ok_and(|c| Config { device: cfg.device.clone(), ..c } == *cfg);
        if !same {
            bail!(
                "the config differs from the one {} was started with ({}); start a new run instead of resuming",
                dir.path.display(),
                dir.file(run::CONFIG_FILE).display()
            );
        }
        let state: Option<TrainState> =
            if dir.exists(run::STATE_FILE) { Some(store::read_json(&dir.file(run::STATE_FILE))?) } else { None };
        return Ok((dir, state));
    }
    std::fs::create_dir_all(&dir.path).with_context(|| format!("cannot create {}", dir.path.display()))?;
    store::atomic_write(&dir.file(run::CONFIG_FILE), config_text.as_bytes())?;
    store::write_json(&dir.file(run::META_FILE), meta)?;
    Ok((dir, None))
}

fn progress_bar(total: usize, plain: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(total as u64),
        if plain { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} · epoch ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Evaluate the fused prediction and, for ResLT heads, each branch alone.
fn evaluate(
    net: &Network,
    test: &TestSet,
    batch_size: usize,
    num_classes: usize,
    groups: &[usize],
) -> (Evaluation, Option<Vec<Accuracy>>) {
    let preds = predict(net, test, batch_size);
    let branches = preds
        .branches
        .as_ref()
        .map(|bs| bs.iter().map(|p| evaluate_predictions(p, &test.labels, num_classes, groups).accuracy).collect());
    (evaluate_predictions(&preds.fused, &test.labels, num_classes, groups), branches)
}

/// Add this invocation's resume record to meta.json, once.
fn record_resume(dir: &RunDir, meta: &mut RunMeta, pending: &mut Option<Resume>) -> Result<()> {
    if let Some(r) = pending.take() {
        meta.resumes.push(r);
        store::write_json(&dir.file(run::META_FILE), meta)?;
    }
    Ok(())
}

/// How a call to [`train`] ended.
pub enum Outcome {
    Finished(Box<Summary>),
    /// `stop_after` epochs ran; the run can be resumed.
    Paused {
        epochs_done: usize,
    },
}

/// Train (or resume) a run to completion and write its summary.
pub fn train(cfg: &Config, opts: &TrainOptions) -> Result<Outcome> {
    crate::train::memory::keep_freed_memory();
    if let Some(t) = opts.threads.filter(|&t| t > 0).or((cfg.train.threads > 0).then_some(cfg.train.threads)) {
        tch::set_num_threads(t as i32);
    }
    let device = resolve_device(&cfg.device)?;
    // Refused before the run directory is touched, so the same command without the flag (or with
    // `train.precision = "fp32"`) works.
    precision::check(cfg.train.precision, device)?;
    if opts.cuda_graphs {
        if let Some(why) = graphed::unsupported_reason(cfg, device) {
            bail!("--cuda-graphs: {why}");
        }
    }
    let name = cfg.name.clone().unwrap_or_else(|| "run".into());
    let invocation = RunMeta {
        name: name.clone(),
        config: opts.config_path.clone(),
        command: opts.command.clone(),
        commit: store::git_commit(),
        seed: cfg.seed,
        device: format!("{device:?}"),
        machine: store::machine_description(device),
        engine: store::engine_description(),
        started_at: store::now_utc(),
        resumes: Vec::new(),
        forked_from: None,
    };
    // The data is read before the run directory is made: a wrong --data leaves no directory
    // behind that the same command would then refuse as "already holds a run".
    let data = load_data(cfg, opts.data_dir.as_deref())?;
    // One writer per run directory, held to the end of training. A fork is staged and moved
    // into place whole (`fork::start` refuses a non-empty --out), so it locks once it is there.
    let early_lock = if opts.fork_from.is_none() { Some(RunDir::new(&opts.run_dir).lock("train")?) } else { None };
    let (dir, state, forked) = match &opts.fork_from {
        Some(_) if opts.resume => bail!(
            "--fork-from starts a new run and --resume continues one; to continue a forked run, pass --resume alone"
        ),
        Some(parent) => {
            let (dir, state) = fork::start(parent, &opts.run_dir, cfg, &invocation)?;
            (dir, Some(state), true)
        }
        None => {
            let (dir, state) = open_run_dir(cfg, opts, &invocation)?;
            (dir, state, false)
        }
    };
    let _lock = match early_lock {
        Some(lock) => lock,
        None => dir.lock("train")?,
    };
    if dir.exists(run::SUMMARY_FILE) {
        eprintln!(
            "{} is already finished; its summary is {}",
            dir.path.display(),
            dir.file(run::SUMMARY_FILE).display()
        );
        return Ok(Outcome::Finished(Box::new(store::read_json(&dir.file(run::SUMMARY_FILE))?)));
    }
    let mut meta: RunMeta = store::read_json(&dir.file(run::META_FILE))?;
    // A divergence message describes the attempt that stopped; this attempt starts clean.
    let _ = std::fs::remove_file(dir.file(run::FAILURE_FILE));

    let num_classes = data.train.num_classes;
    let rule = cfg.group_rule();
    let groups = rule.assign(&data.train_counts);
    let test = TestSet::new(&data.test, device, cfg.train.channels_last);
    let criterion = Criterion::new(&cfg.loss, &data.train_counts, device);
    let train_set = Arc::new(data.train);

    let mut s = build(cfg, device, num_classes)?;
    let (mut epochs_done, mut best, mut last, mut wall) = (0, None::<EpochScore>, None::<EpochScore>, 0.0);
    let mut pending_resume: Option<Resume> = None;
    if let Some(st) = state {
        let momentum = checkpoint::load(&dir.file(&st.checkpoint), &mut s.vs)?;
        s.opt.load_buffers(momentum).map_err(anyhow::Error::msg)?;
        dir.truncate_metrics(st.epochs_done)?;
        (epochs_done, best, last, wall) = (st.epochs_done, st.best, st.last, st.wall_seconds);
        if let Some(f) = meta.forked_from.as_ref().filter(|_| forked) {
            let changed = if f.changed.is_empty() { "nothing".to_string() } else { f.changed.join("; ") };
            eprintln!("forked {} from {} after epoch {epochs_done}; changed: {changed}", dir.path.display(), f.parent);
        } else {
            // Recorded in meta.json with this invocation's first checkpoint, so an attempt that
            // stops before finishing an epoch leaves no trace.
            pending_resume = Some(Resume::of(&invocation, epochs_done));
            eprintln!("resuming {} after epoch {epochs_done}", dir.path.display());
        }
    }

    let t = &cfg.train;
    let mut graphed =
        if opts.cuda_graphs { Some(GraphedStep::new(device, t.batch_size, t.channels_last)?) } else { None };
    let schedule = t.schedule();
    let steps = batches_per_epoch(train_set.len(), t.batch_size, t.drop_last);
    if steps == 0 {
        bail!(
            "the training set has {} images, fewer than one batch of {} with drop_last",
            train_set.len(),
            t.batch_size
        );
    }
    eprintln!(
        "{name}: {} {} images (ρ={}), counts {:?}; {} epochs × {steps} steps on {device:?}",
        cfg.data.dataset.name(),
        train_set.len(),
        cfg.data.rho,
        data.train_counts,
        t.epochs
    );
    let warmup = cfg.loss.route_warmup_epochs;
    if warmup > 0 {
        if warmup < t.epochs {
            eprintln!("{name}: exits accumulate for epochs 1–{warmup}, then route from epoch {}", warmup + 1);
        } else {
            eprintln!(
                "{name}: warning: loss.route_warmup_epochs = {warmup} ≥ train.epochs = {}: this run never routes",
                t.epochs
            );
        }
    }
    if let Some(close) = cfg.loss.exits_close_epoch {
        eprintln!(
            "{name}: training exits close after epoch {close}: from epoch {} every sample reaches the final head",
            close + 1
        );
    }
    let mut last_eval: Option<Evaluation> = None;
    let mut last_branches: Option<Vec<Accuracy>> = None;
    let mut epoch_seconds = Vec::new();
    let first_epoch = epochs_done;
    for epoch in first_epoch..t.epochs {
        if opts.stop_after.is_some_and(|n| epoch - first_epoch >= n) {
            eprintln!("stopping after epoch {epochs_done} as asked; continue with --resume");
            return Ok(Outcome::Paused { epochs_done });
        }
        let started = Instant::now();
        let lr = schedule.lr(epoch);
        let mut loader = EpochLoader::new(
            train_set.clone(),
            t.batch_size,
            t.drop_last,
            Some(cfg.data.augment.clone()),
            cfg.seed,
            epoch,
            t.workers,
            0,
        );
        let pb = progress_bar(steps, opts.plain);
        let run_eta = if epoch_seconds.is_empty() {
            "…".to_string()
        } else {
            let mean = epoch_seconds.iter().sum::<f64>() / epoch_seconds.len() as f64;
            format_duration(mean * (t.epochs - epoch) as f64)
        };
        pb.set_prefix(format!("epoch {}/{} (run ETA {run_eta})", epoch + 1, t.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0usize);
        let mut exit_counts: Vec<Vec<f64>> = Vec::new();
        for (i, batch) in loader.by_ref().enumerate() {
            let n = batch.len();
            let out = graphed::train_step(
                graphed.as_mut(),
                &s.net,
                &mut s.opt,
                &criterion,
                &batch,
                device,
                t.channels_last,
                epoch,
                lr,
            )?;
            let out = out.map_err(|what| {
                // The divergence guard stopped the step: leave the message in the run directory
                // for `reproduce` and for people.
                let msg = format!(
                    "training diverged at epoch {}, step {}: {what}; the run stopped before this step \
                     changed any weight, and the last good checkpoint ({}) is intact",
                    epoch + 1,
                    i + 1,
                    dir.file(&ckpt_name(epochs_done)).display()
                );
                let _ = store::atomic_write(&dir.file(run::FAILURE_FILE), format!("{msg}\n").as_bytes());
                anyhow::anyhow!(msg)
            })?;
            loss_sum += out.loss * n as f64;
            correct += out.correct;
            seen += n;
            exit_counts.resize(out.exit_counts.len().max(exit_counts.len()), vec![0.0; num_classes]);
            for (acc, step) in exit_counts.iter_mut().zip(&out.exit_counts) {
                acc.iter_mut().zip(step).for_each(|(a, c)| *a += c);
            }
            let ips = seen as f64 / started.elapsed().as_secs_f64();
            pb.set_message(format!(
                "loss {:.3} · lr {lr:.2e} · {ips:.0} img/s · last test {}",
                loss_sum / seen as f64,
                last.as_ref().map_or("—".into(), |l| format!("{:.2}% (ep {})", l.overall, l.epoch))
            ));
            pb.inc(1);
        }
        pb.finish_and_clear();
        let data_wait_seconds = loader.waited.as_secs_f64();
        drop(loader);
        let train_seconds = started.elapsed().as_secs_f64();
        let images_per_second = seen as f64 / train_seconds;

        let mut test_branches: Option<Vec<Accuracy>> = None;
        let test_acc = if cfg.eval_at(epoch) {
            let (ev, branches) = evaluate(&s.net, &test, cfg.eval.batch_size, num_classes, &groups);
            test_branches = branches;
            let score = EpochScore::new(epoch + 1, &ev.accuracy);
            if best.as_ref().is_none_or(|b| score.overall > b.overall) {
                best = Some(score.clone());
                checkpoint::save_weights(&dir.file(run::BEST_WEIGHTS), &s.vs)?;
            }
            last = Some(score);
            let acc = ev.accuracy.clone();
            last_eval = Some(ev);
            Some(acc)
        } else {
            None
        };
        let seconds = started.elapsed().as_secs_f64();
        wall += seconds;
        epochs_done = epoch + 1;
        let (train_exit_fractions, train_exit_fractions_by_group) = if exit_counts.is_empty() {
            (None, None)
        } else {
            let (overall, by_group) = exit_fractions(&exit_counts, &groups);
            (Some(overall), Some(by_group))
        };
        let record = EpochRecord {
            epoch: epochs_done,
            lr,
            train_loss: loss_sum / seen as f64,
            train_acc: 100.0 * correct / seen as f64,
            images_per_second,
            seconds,
            data_wait_seconds,
            train_exit_fractions,
            train_exit_fractions_by_group,
            train_exit_counts: (!exit_counts.is_empty())
                .then(|| exit_counts.iter().map(|row| row.iter().map(|&n| n.round() as u64).collect()).collect()),
            test: test_acc.clone(),
            test_branches: test_branches.clone(),
        };
        if test_branches.is_some() {
            last_branches = test_branches;
        }
        dir.append_metrics(&record)?;
        let ckpt = ckpt_name(epochs_done);
        checkpoint::save(&dir.file(&ckpt), &s.vs, &s.opt.buffers())?;
        if opts.keep_weights_from.is_some_and(|n| epochs_done >= n) {
            let kept = dir.file(&run::kept_weights_file(epochs_done));
            let folder = dir.file(run::KEPT_WEIGHTS_DIR);
            std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
            checkpoint::save_weights(&kept, &s.vs)?;
        }
        store::write_json(
            &dir.file(run::STATE_FILE),
            &TrainState {
                epochs_done,
                checkpoint: ckpt.clone(),
                best: best.clone(),
                last: last.clone(),
                wall_seconds: wall,
            },
        )?;
        record_resume(&dir, &mut meta, &mut pending_resume)?;
        if epochs_done > 1 {
            let _ = std::fs::remove_file(dir.file(&ckpt_name(epochs_done - 1)));
        }

        epoch_seconds.push(seconds);
        let mean = epoch_seconds.iter().sum::<f64>() / epoch_seconds.len() as f64;
        let eta = format_duration(mean * (t.epochs - epochs_done) as f64);
        let test_part = match &test_acc {
            Some(a) => format!(
                " | test {:.2} (many {} med {} few {}) best {:.2}@{}",
                a.overall,
                fmt_group(a.many),
                fmt_group(a.medium),
                fmt_group(a.few),
                best.as_ref().map_or(0.0, |b| b.overall),
                best.as_ref().map_or(0, |b| b.epoch)
            ),
            None => String::new(),
        };
        let percents = |f: &Vec<f64>| f.iter().map(|x| format!("{:.0}", 100.0 * x)).collect::<Vec<_>>().join("/");
        // The Few shares beside the overall ones: whether the tail still reaches the final head.
        let few_part = record.train_exit_fractions_by_group.as_ref().and_then(|g| g.few.as_ref());
        let exits_part = record.train_exit_fractions.as_ref().map_or(String::new(), |f| match few_part {
            Some(few) => format!(" exits {}% (few {}%)", percents(f), percents(few)),
            None => format!(" exits {}%", percents(f)),
        });
        eprintln!(
            "epoch {epochs_done}/{} lr {lr:.2e} loss {:.4} train {:.2}%{exits_part} {images_per_second:.0} img/s {seconds:.1}s{test_part} · ETA {eta}",
            t.epochs, record.train_loss, record.train_acc
        );
    }

    // A resumed run that was killed right after its last checkpoint has no evaluation in memory.
    let ev = match last_eval {
        Some(ev) => ev,
        None => {
            let (ev, branches) = evaluate(&s.net, &test, cfg.eval.batch_size, num_classes, &groups);
            last_branches = branches;
            ev
        }
    };
    let (early_exit, early_exit_sweep, last_exits_alone) = if s.net.has_exits() {
        let scores = exit_scores(&s.net, &test, cfg.eval.batch_size, cfg.loss.scale);
        let costs = s.net.cost_model();
        let at = |tau| early_exit_at(&scores, &test.labels, &groups, num_classes, &costs, tau);
        let tau = cfg.inference_exit_threshold();
        let alone = exits_alone(&scores, &test.labels, &groups, num_classes);
        (Some(at(tau)), SWEEP.iter().map(|&t| at(t)).collect(), Some(alone))
    } else {
        (None, Vec::new(), None)
    };
    // A resume that found every epoch done and only wrote the summary is part of the record too.
    record_resume(&dir, &mut meta, &mut pending_resume)?;
    let last = last.unwrap_or_else(|| EpochScore::new(epochs_done, &ev.accuracy));
    let best = best.unwrap_or_else(|| last.clone());
    let summary = Summary {
        name,
        config: meta.config,
        command: meta.command,
        commit: meta.commit,
        seed: cfg.seed,
        dataset: cfg.data.dataset.name().into(),
        rho: cfg.data.rho,
        subset_seed: cfg.data.subset_seed,
        epochs: t.epochs,
        best,
        last,
        groups: GroupsInfo::new(rule.describe(), data.train_counts.clone(), &groups),
        last_per_class: ev.accuracy.per_class.clone(),
        last_confusion: ev.confusion.clone(),
        last_branches,
        last_exits_alone,
        early_exit,
        early_exit_sweep,
        wall_seconds: wall,
        precision: cfg.train.precision,
        device: meta.device,
        machine: meta.machine,
        engine: meta.engine,
        started_at: meta.started_at,
        finished_at: store::now_utc(),
        resumes: meta.resumes,
        forked_from: meta.forked_from,
        early_exit_timing: None,
        weight_average: None,
        selected_on_validation: None,
        precise_bn: None,
    };
    store::write_json(&dir.file(run::SUMMARY_FILE), &summary)?;
    Ok(Outcome::Finished(Box::new(summary)))
}
