//! The `longtail` command line: parse, dispatch, print. No training logic lives here.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use longtail::config;
use longtail::data::cifar::{self, Cifar};
use longtail::data::{download, subset};
use longtail::eval::early_exit::TimingReport;
use longtail::eval::evaluate::{predict, TestSet};
use longtail::eval::metrics::evaluate_predictions;
use longtail::eval::precise_bn::{self, PreciseBnReport};
use longtail::model::Network;
use longtail::report::table::{score_table, timing_blocks};
use longtail::run::{self, EpochScore, GroupsInfo, Provenance, RunDir, Summary};
use longtail::train::checkpoint;
use longtail::train::trainer::{self, Outcome, TrainOptions};

#[derive(Parser)]
#[command(
    name = "longtail",
    version,
    about = "Train and evaluate long-tailed CIFAR classifiers (ResLT, ELF, LDAM-DRW)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a TOML config (resumable).
    Train(TrainArgs),
    /// Evaluate a run's last (or best) weights on the test set.
    Eval {
        run_dir: PathBuf,
        #[arg(long)]
        data: Option<PathBuf>,
        /// Which weights: last or best.
        #[arg(long, default_value = "last")]
        weights: String,
        /// Runs with exits: sweep early-exit inference over these thresholds, e.g. 0.5,0.7,0.9.
        #[arg(long, value_delimiter = ',')]
        exit_threshold: Vec<f64>,
        /// Runs with exits: also time early-exit inference that really stops against the plain
        /// network, at batch 1 (first 1,000 test images) and batch 256 (all), at the configured τ.
        #[arg(long)]
        timing: bool,
        /// Recompute every BatchNorm's running statistics as the average over this many training
        /// batches (PreciseBN) before evaluating, instead of the moving average of the last ~20
        /// batches that training left. The checkpoint is not changed; the result goes to
        /// precise_bn.json, which `publish` attaches. Without a value: 200 batches.
        #[arg(long, value_name = "BATCHES", num_args = 0..=1, default_missing_value = "200")]
        precise_bn: Option<usize>,
        /// Evaluate the mean of the weights kept from epoch N to the last (train with
        /// --keep-weights-from N), with BatchNorm statistics recomputed for them as --precise-bn
        /// does (its batch count applies). The result goes to weight_average.json.
        #[arg(long, value_name = "N")]
        average_from: Option<usize>,
    },
    /// Copy a finished run's summary to results/<name>.json (the evidence behind a number).
    Publish {
        run_dir: PathBuf,
        /// Result name (default: the run's name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Replace an existing result file.
        #[arg(long)]
        force: bool,
    },
    /// Write report.md and report.html (with PNG plots) into each finished run directory.
    Report {
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
    },
    /// One table (markdown, stdout) and one chart (PNG) across finished runs.
    Compare {
        /// Run directories, or published results (results/<name>.json).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// A config key to show as a column, e.g. loss.alpha.
        #[arg(long)]
        by: Option<String>,
        /// Where to write the chart.
        #[arg(long, default_value = "compare.png")]
        png: PathBuf,
    },
    /// Reproduce a whole comparison table.
    Reproduce {
        #[command(subcommand)]
        command: ReproduceCommand,
    },
    /// Images per second of a training step, the real training pipeline and inference (JSON on
    /// stdout); bench/run.sh runs it beside PyTorch and reports the ratio.
    Bench(BenchArgs),
    /// Dataset tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// Override a config key, e.g. --set train.epochs=2 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run directory (default: runs/<name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue a killed run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Dataset folder (else $LONGTAIL_DATA, else ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Device: auto, cpu, cuda, cuda:N (overrides the config).
    #[arg(long)]
    pub device: Option<String>,
    /// One line per epoch instead of progress bars (for logs).
    #[arg(long)]
    pub plain: bool,
    /// Stop cleanly after N epochs in this invocation (continue later with --resume).
    #[arg(long, value_name = "N")]
    pub stop_after: Option<usize>,
    /// libtorch threads for this invocation (not saved in the config, so --resume may change it).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Replay full batches from a CUDA graph (CUDA builds, models without exits or Mixup).
    #[arg(long)]
    pub cuda_graphs: bool,
    /// Start a new run (--out) from this run's last checkpoint: its weights, momentum and metrics
    /// so far. Only [loss], [train] and [eval] keys may differ; the run records the parent and
    /// every changed key. For variants that differ only late in training.
    #[arg(long, value_name = "RUN_DIR")]
    pub fork_from: Option<PathBuf>,
    /// From epoch N on, also keep every epoch's weights in <run>/weights/ (2 MB each for
    /// ResNet-32), for `eval --average-from`. Changes no number of the run; not saved in the config.
    #[arg(long, value_name = "N")]
    pub keep_weights_from: Option<usize>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// libtorch threads (default: libtorch's choice, one per physical core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed steps of the synthetic training step.
    #[arg(long, default_value_t = 40)]
    steps: usize,
    /// Timed steps of the real training pipeline (loader + augmentation + step).
    #[arg(long, default_value_t = 60)]
    pipeline_steps: usize,
    #[arg(long, default_value_t = 500)]
    eval_batch: usize,
    /// Data worker threads of the pipeline measurement.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also measure steps replayed from a CUDA graph, and check them against eager steps.
    #[arg(long)]
    cuda_graphs: bool,
}

#[derive(clap::Args)]
struct ReproduceArgs {
    /// The table's rows and configs.
    #[arg(long, default_value = "configs/report/table.toml")]
    manifest: PathBuf,
    /// Folder with one run directory per config (named after the config file).
    #[arg(long, default_value = "runs/report")]
    runs: PathBuf,
    /// Only these rows (config stems such as model-8, or row labels), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Trainings at once (a GPU fits several ResNet-32 runs; on CPU the cores are split).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// libtorch threads per training (default: cores / jobs on CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not train: render the table from the runs that exist.
    #[arg(long)]
    table_only: bool,
    /// Resume runs the divergence guard stopped.
    #[arg(long)]
    retry_failed: bool,
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    device: Option<String>,
    /// Config override passed to every training (e.g. a short schedule for a smoke test).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum ReproduceCommand {
    /// Train (or resume, or skip when finished) every config of REPORT.txt's comparison table,
    /// then render it: reported vs ours, best and last epoch, Many/Medium/Few, early exits.
    Report(ReproduceArgs),
}

/// Which long-tailed subset, and where its release is.
#[derive(clap::Args)]
struct SubsetChoice {
    #[arg(long)]
    rho: f64,
    #[arg(long, default_value_t = 0)]
    seed: u32,
    #[arg(long, default_value = "cifar10")]
    dataset: String,
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Where the dataset is and how many images each split and class has.
    Info {
        #[arg(long, default_value = "cifar10")]
        dataset: String,
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also show the long-tailed counts at this ρ.
        #[arg(long)]
        rho: Option<f64>,
    },
    /// Check sizes, labels and official MD5s of every file.
    Verify {
        #[arg(long, default_value = "cifar10")]
        dataset: String,
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Download and extract the official archive (MD5-checked, atomic).
    Download {
        #[arg(long, default_value = "cifar10")]
        dataset: String,
        /// Parent folder for the extracted release.
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Mirror URL (the MD5 is still the official one unless --md5 is given).
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        md5: Option<String>,
    },
    /// Pack a long-tailed training subset and the test set into a folder to carry to another
    /// machine; point `--data` at it there (it checks ρ and the subset seed against the config).
    Pack {
        #[command(flatten)]
        subset: SubsetChoice,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the kept training indices of a long-tailed subset, one per line in kept order.
    Subset {
        #[command(flatten)]
        subset: SubsetChoice,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_dataset(s: &str) -> Result<Cifar> {
    match s {
        "cifar10" => Ok(Cifar::Cifar10),
        "cifar100" => Ok(Cifar::Cifar100),
        other => bail!("--dataset {other:?} is not known; use cifar10 or cifar100"),
    }
}

fn run_bench(a: BenchArgs) -> Result<()> {
    if a.threads > 0 {
        tch::set_num_threads(a.threads as i32);
    }
    let opts = longtail::bench::BenchOptions {
        device: trainer::resolve_device(&a.device)?,
        batch: a.batch,
        steps: a.steps,
        pipeline_steps: a.pipeline_steps,
        eval_batch: a.eval_batch,
        workers: a.workers,
        data_dir: a.data,
        cuda_graphs: a.cuda_graphs,
    };
    let result = longtail::bench::run(&opts)?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

fn run_reproduce(args: ReproduceArgs) -> Result<()> {
    use longtail::reproduce::manifest::Manifest;
    use longtail::reproduce::runner::{train_missing, RunnerOptions};
    // Config paths in the manifest are relative to the project root: the folder above
    // `configs/` for the shipped manifest, else the manifest's own folder.
    let manifest_dir = args.manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let root = manifest_dir
        .ancestors()
        .find(|a| a.join("configs").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir.clone());
    let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
    let manifest = Manifest::load(&args.manifest, &root)?;
    let rows = manifest.select(&args.only)?;
    if !args.table_only {
        let opts = RunnerOptions {
            exe: std::env::current_exe().context("cannot find the longtail executable")?,
            root: root.clone(),
            runs: args.runs.clone(),
            jobs: args.jobs,
            threads: args.threads,
            data: args.data.clone(),
            device: args.device.clone(),
            overrides: args.overrides.clone(),
            retry_failed: args.retry_failed,
        };
        let outcome = train_missing(&Manifest::distinct_configs(&rows), &opts)?;
        let failed: Vec<&str> = outcome.iter().filter(|(_, ok)| !ok).map(|(n, _)| n.as_str()).collect();
        if !failed.is_empty() {
            eprintln!("not finished: {} (see their logs); the table marks them", failed.join(", "));
        }
    }
    let md = longtail::report::reproduction::render(&manifest, &rows, &args.runs)?;
    print!("{md}");
    eprintln!("wrote {} (and .html, .png)", args.runs.join(longtail::report::reproduction::TABLE_MD).display());
    Ok(())
}

fn run_train(args: TrainArgs) -> Result<()> {
    let TrainArgs {
        config: config_path,
        mut overrides,
        out,
        resume,
        data,
        device,
        plain,
        stop_after,
        threads,
        cuda_graphs,
        fork_from,
        keep_weights_from,
    } = args;
    if let Some(d) = device {
        overrides.push(format!("device=\"{d}\""));
    }
    let cfg = config::load(&config_path, &overrides)?;
    let name = cfg.name.clone().unwrap_or_else(|| "run".into());
    let run_dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&name));
    let opts = TrainOptions {
        run_dir: run_dir.clone(),
        resume,
        data_dir: data,
        config_path: Some(config_path.display().to_string()),
        command: run::shell_command(),
        plain,
        stop_after,
        threads,
        cuda_graphs,
        fork_from,
        keep_weights_from,
    };
    let summary = match trainer::train(&cfg, &opts)? {
        Outcome::Finished(s) => s,
        Outcome::Paused { epochs_done } => {
            println!("paused after epoch {epochs_done}; continue with --resume --out {}", run_dir.display());
            return Ok(());
        }
    };
    println!(
        "\n{} — {} ρ={} ({} epochs, {:.0} s)",
        summary.name, summary.dataset, summary.rho, summary.epochs, summary.wall_seconds
    );
    let mut rows = vec![("best".to_string(), summary.best.clone()), ("last".to_string(), summary.last.clone())];
    for (name, acc) in summary.last_parts_alone() {
        rows.push((format!("last, {name}"), EpochScore::new(summary.last.epoch, acc)));
    }
    let rows: Vec<(&str, &EpochScore)> = rows.iter().map(|(n, s)| (n.as_str(), s)).collect();
    println!("{}", score_table(&rows, &summary.groups));
    if let Some(e) = &summary.early_exit {
        println!("Early-exit inference of the last weights:\n{}", early_exit_table(std::slice::from_ref(e)));
    }
    println!("run directory: {}", run_dir.display());
    Ok(())
}

/// Interleaved passes per way in `eval --timing` (the medians are reported).
const TIMING_REPETITIONS: usize = 3;

fn early_exit_table(rows: &[longtail::eval::early_exit::EarlyExit]) -> String {
    use longtail::eval::metrics::fmt_group;
    let mut s = String::from("| τ | overall | many | medium | few | leave at exit 1 / 2 / final (%) | mean MMACs | saving |\n|---:|---:|---:|---:|---:|---|---:|---:|\n");
    for r in rows {
        let fr: Vec<String> = r.exit_fractions.iter().map(|f| format!("{:.1}", 100.0 * f)).collect();
        s.push_str(&format!(
            "| {} | {:.2} | {} | {} | {} | {} | {:.2} | {:.1} % |\n",
            r.threshold,
            r.overall,
            fmt_group(r.many),
            fmt_group(r.medium),
            fmt_group(r.few),
            fr.join(" / "),
            r.mean_macs / 1e6,
            100.0 * r.saving
        ));
    }
    if let Some(r) = rows.first() {
        s.push_str(&format!("\nMACs of the same network without exits: {:.2} M.\n", r.full_macs as f64 / 1e6));
    }
    s
}

fn run_eval(
    run_dir: &Path,
    data: Option<PathBuf>,
    weights: &str,
    thresholds: &[f64],
    timing: bool,
    precise_bn: Option<usize>,
    average_from: Option<usize>,
) -> Result<()> {
    if precise_bn == Some(0) {
        bail!("--precise-bn 0: give at least one batch (default {})", precise_bn::DEFAULT_BATCHES);
    }
    if average_from.is_some() && weights != "last" {
        bail!("--average-from averages the kept weights up to the last epoch; --weights {weights} does not apply");
    }
    if average_from.is_some() && timing {
        bail!("--timing times the saved weights; run it without --average-from");
    }
    // Averaged weights have no BN statistics of their own: they are always recomputed.
    let precise_bn = precise_bn.or(average_from.map(|_| precise_bn::DEFAULT_BATCHES));
    let dir = RunDir::new(run_dir);
    let cfg_path = dir.file(run::CONFIG_FILE);
    let cfg = config::load(&cfg_path, &[])?;
    let device = trainer::resolve_device(&cfg.device)?;
    let file = match weights {
        "best" => run::BEST_WEIGHTS.to_string(),
        "last" => {
            let st: run::TrainState = run::read_json(&dir.file(run::STATE_FILE))?;
            st.checkpoint
        }
        other => bail!("--weights {other:?}: use last or best"),
    };
    let data = trainer::load_data(&cfg, data.as_deref())?;
    let mut vs = tch::nn::VarStore::new(device);
    let net = Network::new(&vs.root(), &cfg.model, data.train.num_classes as i64)?;
    if cfg.train.channels_last {
        Network::to_channels_last(&vs);
    }
    let st: Option<run::TrainState> = run::read_json(&dir.file(run::STATE_FILE)).ok();
    let epoch = match (weights, &st) {
        ("best", Some(s)) => s.best.as_ref().map_or(0, |b| b.epoch),
        (_, Some(s)) => s.epochs_done,
        _ => 0,
    };
    match average_from {
        Some(from) => {
            let files = longtail::eval::average::kept_files(&dir, from, epoch)?;
            let n = longtail::eval::average::load_average(&mut vs, &files)?;
            println!("Weights of epochs {from}–{epoch} averaged ({n} files).");
        }
        None => {
            checkpoint::load(&dir.file(&file), &mut vs)?;
        }
    }
    let recomputed = match precise_bn {
        Some(n) => {
            let batches = precise_bn::training_batches(
                &data.train,
                &cfg.data.augment,
                cfg.train.batch_size,
                cfg.seed,
                cfg.train.epochs,
                n,
                device,
                cfg.train.channels_last,
            )
            .map_err(|e| anyhow::anyhow!("--precise-bn: {e}"))?;
            let done = precise_bn::recompute(&vs, batches, |xs| {
                let _ = net.forward(xs, true);
            });
            let untouched = match average_from {
                Some(_) => dir.file(run::KEPT_WEIGHTS_DIR),
                None => dir.file(&file),
            };
            println!(
                "BatchNorm statistics of {} layers recomputed over {} training batches ({} images); {} is unchanged.\n",
                done.layers,
                done.batches,
                done.images,
                untouched.display()
            );
            Some(done)
        }
        None => None,
    };
    let test = TestSet::new(&data.test, device, cfg.train.channels_last);
    let preds = predict(&net, &test, cfg.eval.batch_size);
    let rule = cfg.group_rule();
    let groups = rule.assign(&data.train_counts);
    let ev = evaluate_predictions(&preds.fused, &test.labels, data.train.num_classes, &groups);
    let info = GroupsInfo::new(rule.describe(), data.train_counts.clone(), &groups);
    let branches: Vec<_> = preds
        .branches
        .iter()
        .flatten()
        .map(|p| evaluate_predictions(p, &test.labels, data.train.num_classes, &groups).accuracy)
        .collect();
    let scores = net
        .has_exits()
        .then(|| longtail::eval::early_exit::exit_scores(&net, &test, cfg.eval.batch_size, cfg.loss.scale));
    let exits = scores.as_ref().map_or_else(Vec::new, |s| {
        longtail::eval::early_exit::exits_alone(s, &test.labels, &groups, data.train.num_classes)
    });
    let parts = longtail::eval::metrics::parts_alone(&branches, &exits);
    let label = match average_from {
        Some(from) => format!("epochs {from}–{epoch} averaged, precise BN"),
        None if recomputed.is_some() => format!("{weights}, precise BN"),
        None => weights.to_string(),
    };
    let mut rows = vec![(label.clone(), EpochScore::new(epoch, &ev.accuracy))];
    rows.extend(parts.iter().map(|(name, acc)| (name.clone(), EpochScore::new(epoch, acc))));
    let rows: Vec<(&str, &EpochScore)> = rows.iter().map(|(n, s)| (n.as_str(), s)).collect();
    println!("{}", score_table(&rows, &info));
    let per_class = |v: &[f64]| v.iter().map(|a| format!("{a:.1}")).collect::<Vec<_>>().join(" ");
    println!("per class: {}", per_class(&ev.accuracy.per_class));
    // Per class for the early exits only: an exit keeping one class to itself shows here
    // (results/model-4); the branches have their own plot in the run report.
    for (name, acc) in &parts[parts.len() - exits.len()..] {
        println!("per class, {name}: {}", per_class(&acc.per_class));
    }
    let mut configured_exit = None;
    if let Some(scores) = &scores {
        let costs = net.cost_model();
        let configured_tau = cfg.eval.exit_threshold.unwrap_or(cfg.loss.exit_threshold);
        let taus: Vec<f64> = if thresholds.is_empty() { vec![configured_tau] } else { thresholds.to_vec() };
        let at = |t: f64| {
            longtail::eval::early_exit::early_exit_at(scores, &test.labels, &groups, data.train.num_classes, &costs, t)
        };
        let rows: Vec<_> = taus.iter().map(|&t| at(t)).collect();
        // The saved results (precise BN, timing) are always at the configured τ, whatever the
        // sweep asked for: that is the τ of the early exit `publish` attaches them to.
        if recomputed.is_some() {
            configured_exit = Some(at(configured_tau));
        }
        println!("\nEarly-exit inference ({label}):\n{}", early_exit_table(&rows));
        if timing {
            let rows: Vec<_> = [(1, 1000), (256, test.len())]
                .into_iter()
                .map(|(batch, images)| {
                    longtail::eval::early_exit::time_early_exit(
                        &net,
                        &test,
                        batch,
                        images,
                        configured_tau,
                        cfg.loss.scale,
                        TIMING_REPETITIONS,
                    )
                })
                .collect();
            let report = TimingReport {
                weights: weights.to_string(),
                epoch: Some(epoch),
                provenance: Provenance::now(device),
                machine: run::machine_description(device),
                engine: run::engine_description(),
                rows,
            };
            print!("{}", longtail::report::document::markdown(&timing_blocks(&report)));
            let path = dir.file(run::TIMING_FILE);
            run::write_json(&path, &report)?;
            println!("wrote {} (`longtail publish` attaches it to the result)", path.display());
        }
    } else if !thresholds.is_empty() || timing {
        bail!("--exit-threshold / --timing: this run's model has no early exits");
    }
    if let Some(done) = recomputed {
        let report = PreciseBnReport {
            weights: weights.to_string(),
            epoch,
            averaged_from: average_from,
            layers: done.layers,
            batches: done.batches,
            images: done.images,
            full_depth: ev.accuracy.clone(),
            exits_alone: exits.clone(),
            early_exit: configured_exit,
            provenance: Provenance::now(device),
        };
        let path = dir.file(if average_from.is_some() { run::WEIGHT_AVERAGE_FILE } else { run::PRECISE_BN_FILE });
        run::write_json(&path, &report)?;
        println!("wrote {} (`longtail publish` attaches it to the result)", path.display());
    }
    Ok(())
}

fn run_publish(run_dir: &Path, name: Option<String>, results: &Path, force: bool) -> Result<()> {
    let dir = RunDir::new(run_dir);
    let summary_path = dir.file(run::SUMMARY_FILE);
    if !summary_path.exists() {
        bail!("{} has no {} yet: the run has not finished", run_dir.display(), run::SUMMARY_FILE);
    }
    let mut summary: Summary = run::read_json(&summary_path)?;
    if let Some(timing) = dir.early_exit_timing()? {
        let file = dir.file(run::TIMING_FILE);
        match timing.epoch {
            Some(epoch) => refuse_other_weights(&summary, &file, run_dir, &timing.weights, epoch, "--timing")?,
            None => eprintln!(
                "note: {} does not say which epoch it timed (written before eval recorded it); attached unchecked",
                file.display()
            ),
        }
        let configured = summary.early_exit.as_ref().map(|e| e.threshold);
        if let Some(other) = timing.rows.iter().map(|r| r.tau).find(|&t| Some(t) != configured) {
            bail!(
                "{} timed early exits at τ = {other}, not at the run's configured τ{}: run `longtail eval {} --timing` again",
                file.display(),
                configured.map_or(String::new(), |t| format!(" = {t}")),
                run_dir.display()
            );
        }
        summary.early_exit_timing = Some(timing);
    }
    summary.precise_bn = about_the_run(&summary, &dir.file(run::PRECISE_BN_FILE), run_dir, dir.precise_bn()?)?;
    summary.weight_average =
        about_the_run(&summary, &dir.file(run::WEIGHT_AVERAGE_FILE), run_dir, dir.weight_average()?)?;
    let name = name.unwrap_or_else(|| summary.name.clone());
    std::fs::create_dir_all(results).with_context(|| format!("cannot create {}", results.display()))?;
    let target = results.join(format!("{name}.json"));
    if target.exists() && !force {
        bail!("{} exists; pass --force to replace it, or --name to publish beside it", target.display());
    }
    run::write_json(&target, &summary)?;
    println!("wrote {}", target.display());
    Ok(())
}

/// `eval --precise-bn`'s or `eval --average-from`'s report, if there is one, once
/// [`refuse_other_weights`] has checked that it describes the run's weights.
fn about_the_run(
    summary: &Summary,
    file: &Path,
    run_dir: &Path,
    report: Option<PreciseBnReport>,
) -> Result<Option<PreciseBnReport>> {
    let Some(report) = report else { return Ok(None) };
    let flag = match report.averaged_from {
        Some(from) => format!("--average-from {from}"),
        None => "--precise-bn".to_string(),
    };
    refuse_other_weights(summary, file, run_dir, &report.weights, report.epoch, &flag)?;
    Ok(Some(report))
}

/// A run resumed (or retrained) after an `eval` has other weights than the eval's file
/// describes: such a file is refused rather than attached to numbers it is not about.
fn refuse_other_weights(
    summary: &Summary,
    file: &Path,
    run_dir: &Path,
    weights: &str,
    epoch: usize,
    flag: &str,
) -> Result<()> {
    match summary.epoch_of(weights) {
        Some(expected) if expected == epoch => Ok(()),
        expected => bail!(
            "{} describes the {weights} weights of epoch {epoch}, but the run's are from epoch {}: run `longtail eval {} {flag}` again",
            file.display(),
            expected.map_or("?".to_string(), |e| e.to_string()),
            run_dir.display()
        ),
    }
}

fn run_data(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info { dataset, data, rho } => {
            let kind = parse_dataset(&dataset)?;
            let dir = cifar::find_dir(kind, data.as_deref())?;
            let train = cifar::load_train(kind, &dir)?;
            let test = cifar::load_test(kind, &dir)?;
            println!("{} at {}", kind.name(), dir.display());
            println!("train: {} images, per class {:?}", train.len(), train.class_counts());
            println!("test:  {} images, per class {:?}", test.len(), test.class_counts());
            if let Some(rho) = rho {
                let counts = subset::class_counts(train.len(), kind.num_classes(), rho);
                println!("long-tailed ρ={rho}: {} images, per class {:?}", counts.iter().sum::<usize>(), counts);
            }
        }
        DataCommand::Verify { dataset, data } => {
            let kind = parse_dataset(&dataset)?;
            let dir = cifar::find_dir(kind, data.as_deref())?;
            for r in cifar::verify(kind, &dir)? {
                let check =
                    if r.md5_checked { "official md5 ok" } else { "no official md5 published; sizes and labels ok" };
                println!("{:<18} {:>6} records  {}  {check}", r.file, r.records, r.md5);
            }
            println!("{} at {} is complete and intact", kind.name(), dir.display());
        }
        DataCommand::Download { dataset, dir, url, md5 } => {
            let kind = parse_dataset(&dataset)?;
            let (official_url, official_md5) = kind.archive();
            let url = url.unwrap_or_else(|| official_url.to_string());
            let md5 = md5.unwrap_or_else(|| official_md5.to_string());
            let out = download::download(kind, &url, &md5, &dir, true)?;
            println!("{} is in {}", kind.name(), out.display());
        }
        DataCommand::Pack { subset: SubsetChoice { rho, seed, dataset, data }, out } => {
            let kind = parse_dataset(&dataset)?;
            let dir = cifar::find_dir(kind, data.as_deref())?;
            let card = longtail::data::pack::write(kind, &dir, rho, seed, &out)?;
            eprintln!(
                "packed {} images of {} (ρ={rho}, subset seed {seed}, counts {:?}) and the test set into {}",
                card.images,
                card.dataset,
                card.counts,
                out.display()
            );
        }
        DataCommand::Subset { subset: SubsetChoice { rho, seed, dataset, data }, out } => {
            let kind = parse_dataset(&dataset)?;
            let dir = cifar::find_dir(kind, data.as_deref())?;
            let train = cifar::load_train(kind, &dir)?;
            let idx = subset::long_tailed_indices(&train.labels, kind.num_classes(), rho, seed);
            let text = subset::format_indices(&idx);
            match out {
                Some(p) => {
                    run::atomic_write(&p, text.as_bytes())?;
                    eprintln!("wrote {} indices to {}", idx.len(), p.display());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => run_train(args),
        Command::Eval { run_dir, data, weights, exit_threshold, timing, precise_bn, average_from } => {
            run_eval(&run_dir, data, &weights, &exit_threshold, timing, precise_bn, average_from)
        }
        Command::Publish { run_dir, name, results, force } => run_publish(&run_dir, name, &results, force),
        Command::Report { run_dirs } => run_dirs.iter().try_for_each(|d| {
            let md = longtail::report::run_report::write(d)?;
            println!("wrote {} (and report.html, plots)", md.display());
            Ok(())
        }),
        Command::Compare { runs, by, png } => {
            let runs: Vec<&Path> = runs.iter().map(|p| p.as_path()).collect();
            longtail::report::compare::compare(&runs, by.as_deref(), &png).map(|md| print!("{md}"))
        }
        Command::Reproduce { command: ReproduceCommand::Report(args) } => run_reproduce(args),
        Command::Bench(args) => run_bench(args),
        Command::Data { command } => run_data(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
