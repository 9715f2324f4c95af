//! The `longtail` command line: parse, dispatch, print. No training logic lives here.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use longtail::config;
use longtail::data::cifar::{self, Cifar};
use longtail::data::{download, subset};
use longtail::eval::saved_run::{evaluate_run, EvalRequest};
use longtail::report::table::{early_exit_table, score_table};
use longtail::run::EpochScore;
use longtail::run::Weights;
use longtail::store;
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
    /// Evaluate a run's last (or best) weights on the test set, or a zoo file
    /// (results/<name>/weights-*.safetensors, with the config.toml beside it).
    Eval {
        run_dir: PathBuf,
        #[arg(long)]
        data: Option<PathBuf>,
        /// Which weights: last or best.
        #[arg(long, default_value = "last")]
        weights: Weights,
        /// Runs with exits: sweep early-exit inference over these thresholds, e.g. 0.5,0.7,0.9.
        #[arg(long, value_delimiter = ',', value_parser = longtail::check::parse_confidence)]
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
    /// Choose a run's final epoch on validation images the long-tailed subset leaves out (never the
    /// test set), among the epochs it kept (train --keep-weights-from N), then score that epoch on
    /// the test set. The result goes to validation_selection.json, which `publish` attaches.
    Select {
        run_dir: PathBuf,
        /// The CIFAR binary folder (a packed subset lacks the left-out images).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Validation images per class at most (a class with fewer left keeps them all).
        #[arg(long, default_value_t = longtail::data::validation::DEFAULT_PER_CLASS)]
        per_class: usize,
    },
    /// Second-stage and post-hoc re-balancing of a finished run's heads on its frozen backbone
    /// (logit adjustment, τ-normalisation, cRT, LWS, MiSLAS), each setting chosen on the validation
    /// images `select` draws, then scored once on the test set with calibration and early exit.
    /// The result goes to stage_two.json, which `publish` attaches.
    Rebalance {
        run_dir: PathBuf,
        /// The CIFAR binary folder (a packed subset lacks the left-out images).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Validation images per class at most.
        #[arg(long, default_value_t = longtail::data::validation::DEFAULT_PER_CLASS)]
        per_class: usize,
        /// Methods, comma-separated (default: all five).
        #[arg(long, value_enum, value_delimiter = ',')]
        methods: Vec<longtail::rebalance::Method>,
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
        /// Also write the run's weights into the model zoo: results/<name>/weights-last.safetensors
        /// (and the validation-chosen epoch's, when kept) with its config.toml, for `eval` and PyTorch.
        #[arg(long)]
        zoo: bool,
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
        /// Also write the markdown into this file.
        #[arg(long)]
        md: Option<PathBuf>,
    },
    /// Where each run stands: state (running, stopped, finished, failed), epochs, newest and best
    /// test accuracy, pace and time left. Give run directories or folders of them.
    Status {
        #[arg(default_value = "runs")]
        paths: Vec<PathBuf>,
    },
    /// Are two runs the same run? Compares the configs, every number of metrics.jsonl (wall-clock
    /// fields aside) and each weights file both have, tensor by tensor; or two .ot files. Exit
    /// status 0: the same, 1: different.
    Diff { a: PathBuf, b: PathBuf },
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
    /// Write no TensorBoard event files (by default <run>/tensorboard/ gets per-step loss and LR,
    /// per-epoch accuracy overall / Many / Medium / Few / per class, exit shares, images per second).
    #[arg(long)]
    pub no_tensorboard: bool,
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
    /// Render the table from the published results in DIR (`<config stem>.json`, as `publish`
    /// writes them) instead of run directories, into DIR. Implies --table-only.
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
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
    /// Passed to every training: keep each epoch's weights from epoch N on (for `select`,
    /// `eval --average-from` and second-stage methods).
    #[arg(long, value_name = "N")]
    keep_weights_from: Option<usize>,
    /// Train every row at each of these seeds, e.g. 0,1,2. The config's own seed keeps the row's
    /// run directory; another seed N trains into `<config stem>-seedN`.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// Instead of training here: a SLURM job array, one task per run.
#[derive(clap::Args)]
struct SlurmArgs {
    /// Write a SLURM job array (one task per run, each resuming its run) into <runs>/slurm/
    /// instead of training here, and a job that renders the table after the last task.
    #[arg(long)]
    slurm: bool,
    /// Also submit them with sbatch.
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// CPU cores per task (also the task's libtorch threads unless --threads is given).
    #[arg(long, default_value_t = 2, requires = "slurm")]
    slurm_cpus: usize,
    /// Memory per task (sbatch --mem).
    #[arg(long, default_value = "8G", requires = "slurm")]
    slurm_mem: String,
    /// GPUs per task (--gres=gpu:N).
    #[arg(long, default_value_t = 0, requires = "slurm")]
    slurm_gpus: usize,
    /// Time limit per task (minutes, or HH:MM:SS, or D-HH:MM:SS). Before it ends the task
    /// checkpoints and requeues itself, so a run longer than the limit still finishes.
    #[arg(long, default_value = "6:00:00", requires = "slurm")]
    slurm_time: String,
    /// Partition (sbatch --partition).
    #[arg(long, requires = "slurm")]
    slurm_partition: Option<String>,
    /// Seconds before the time limit at which a task checkpoints and requeues.
    #[arg(long, default_value_t = 300, requires = "slurm")]
    slurm_signal_before: u32,
    /// More sbatch options for every job, e.g. --slurm-arg=--account=lab (repeatable).
    #[arg(long = "slurm-arg", value_name = "OPTION", allow_hyphen_values = true, requires = "slurm")]
    slurm_extra: Vec<String>,
}

impl SlurmArgs {
    fn options(&self) -> Option<longtail::reproduce::slurm::SlurmOptions> {
        self.slurm.then(|| longtail::reproduce::slurm::SlurmOptions {
            cpus_per_task: self.slurm_cpus,
            mem: self.slurm_mem.clone(),
            gpus: self.slurm_gpus,
            time: self.slurm_time.clone(),
            partition: self.slurm_partition.clone(),
            signal_before: self.slurm_signal_before,
            extra: self.slurm_extra.clone(),
            submit: self.submit,
        })
    }
}

#[derive(clap::Args)]
struct SweepArgs {
    /// The sweep file: configs, `[set]` keys with their values, seeds (configs/sweeps/).
    sweep: PathBuf,
    /// Folder with one run directory per run of the sweep.
    #[arg(long)]
    runs: PathBuf,
    /// Print the runs the sweep expands to, and do nothing else.
    #[arg(long)]
    list: bool,
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    device: Option<String>,
    /// Config override passed to every training, on top of the sweep's own values.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, value_name = "N")]
    keep_weights_from: Option<usize>,
    #[arg(long)]
    retry_failed: bool,
    #[command(flatten)]
    slurm: SlurmArgs,
}

#[derive(Subcommand)]
enum ReproduceCommand {
    /// Train (or resume, or skip when finished) every config of REPORT.txt's comparison table,
    /// then render it: reported vs ours, best and last epoch, Many/Medium/Few, early exits.
    Report(ReproduceArgs),
    /// Render the second-stage table over every published result (`results/stage-two.md`):
    /// as trained and after each `rebalance` method, with calibration.
    StageTwo {
        #[arg(long, default_value = "results")]
        results: PathBuf,
    },
    /// Train (or resume, or skip) every run of a sweep file: its configs × every combination of
    /// its `[set]` values × its seeds, each with a stable name; then compare them (mean ± std
    /// over seeds) into <runs>/sweep.md.
    Sweep(SweepArgs),
    /// One task of a SLURM array (`--slurm`): train run N of the plan, resuming it.
    Task {
        /// The array's plan (<runs>/slurm/plan.json).
        plan: PathBuf,
        /// Which run (SLURM_ARRAY_TASK_ID).
        index: usize,
    },
}

/// Which long-tailed subset, and where its release is.
#[derive(clap::Args)]
struct SubsetChoice {
    #[arg(long, value_parser = longtail::check::parse_rho)]
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
        #[arg(long, value_parser = longtail::check::parse_rho)]
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
        device: longtail::train::setup::resolve_device(&a.device)?,
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
    use longtail::reproduce::plan::{with_seeds, PlannedRun};
    use longtail::reproduce::runner::RunnerOptions;
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
    if !args.table_only && args.results.is_none() {
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
            keep_weights_from: args.keep_weights_from,
        };
        // Train in the order --only names the rows (the table still renders in its own order).
        let rows_in_order = Manifest::distinct_configs(&manifest.in_given_order(&args.only)?);
        let planned =
            with_seeds(&rows_in_order.iter().map(PlannedRun::of_row).collect::<Vec<_>>(), &args.seeds, &root)?;
        if let Some(slurm) = args.slurm.options() {
            let mut render = vec!["reproduce".to_string(), "report".into(), "--table-only".into()];
            render.extend(["--manifest".into(), std::path::absolute(&args.manifest)?.display().to_string()]);
            render.extend(["--runs".into(), std::path::absolute(&args.runs)?.display().to_string()]);
            if !args.only.is_empty() {
                render.extend(["--only".into(), args.only.join(",")]);
            }
            return launch_array(opts, planned, &slurm, &render, "longtail-report");
        }
        train_here(&planned, &opts)?;
    }
    use longtail::report::reproduction::{render, Source, TABLE_MD};
    let source = match &args.results {
        Some(dir) => Source::Results(dir),
        None => Source::Runs(&args.runs),
    };
    let md = render(&manifest, &rows, source)?;
    print!("{md}");
    let folder = args.results.as_ref().unwrap_or(&args.runs);
    eprintln!("wrote {} (and .html, .png)", folder.join(TABLE_MD).display());
    Ok(())
}

/// Train the planned runs on this machine (`reproduce`'s queue); a stop request ends the process
/// with the interrupted status once every training has checkpointed.
fn train_here(
    planned: &[longtail::reproduce::plan::PlannedRun],
    opts: &longtail::reproduce::runner::RunnerOptions,
) -> Result<()> {
    let outcome = longtail::reproduce::runner::train_missing(planned, opts)?;
    let failed: Vec<&str> = outcome.iter().filter(|(_, ok)| !ok).map(|(n, _)| n.as_str()).collect();
    if !failed.is_empty() {
        eprintln!("not finished: {} (see their logs); the table marks them", failed.join(", "));
    }
    if let Some(signal) = longtail::interrupt::requested() {
        eprintln!(
            "stopped by {}: every training wrote a checkpoint; the same command resumes them",
            longtail::interrupt::name(signal)
        );
        std::process::exit(longtail::interrupt::EXIT_INTERRUPTED);
    }
    Ok(())
}

/// Write (and with --submit, submit) the SLURM array of `planned`, with absolute paths, since
/// the tasks run elsewhere; each task gets the cores it asks for as libtorch threads.
fn launch_array(
    mut opts: longtail::reproduce::runner::RunnerOptions,
    planned: Vec<longtail::reproduce::plan::PlannedRun>,
    slurm: &longtail::reproduce::slurm::SlurmOptions,
    render: &[String],
    name: &str,
) -> Result<()> {
    use longtail::reproduce::slurm::{write_array, ArrayPlan, ARRAY_SCRIPT};
    opts.root = std::path::absolute(&opts.root)?;
    opts.runs = std::path::absolute(&opts.runs)?;
    opts.data = opts.data.as_deref().map(std::path::absolute).transpose()?;
    opts.threads = opts.threads.or(Some(slurm.cpus_per_task));
    opts.jobs = 1;
    let n = planned.len();
    let (dir, job) = write_array(&ArrayPlan { options: opts, runs: planned }, slurm, render, name)?;
    match job {
        Some(id) => println!("submitted array {id} ({n} tasks) and its table job; scripts in {}", dir.display()),
        None => println!(
            "wrote {} ({n} tasks); submit with: sbatch {}",
            dir.join(ARRAY_SCRIPT).display(),
            dir.join(ARRAY_SCRIPT).display()
        ),
    }
    Ok(())
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    use longtail::reproduce::plan::Sweep;
    use longtail::reproduce::runner::RunnerOptions;
    let root = PathBuf::from(".");
    let sweep = Sweep::load(&args.sweep)?;
    let planned = sweep.expand(&root)?;
    if args.list {
        for r in &planned {
            println!("{}\t{}\t{}", r.name, r.config.display(), r.overrides.join(" "));
        }
        return Ok(());
    }
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
        keep_weights_from: args.keep_weights_from,
    };
    let runs_abs = std::path::absolute(&args.runs)?;
    let md = runs_abs.join("sweep.md").display().to_string();
    let png = runs_abs.join("sweep.png").display().to_string();
    let render = ["compare", &runs_abs.display().to_string(), "--md", &md, "--png", &png].map(String::from).to_vec();
    if let Some(slurm) = args.slurm.options() {
        return launch_array(opts, planned, &slurm, &render, "longtail-sweep");
    }
    train_here(&planned, &opts)?;
    let png = args.runs.join("sweep.png");
    let text = longtail::report::compare::compare(&[args.runs.as_path()], None, &png)?;
    longtail::store::atomic_write(Path::new(&md), text.as_bytes())?;
    print!("{text}");
    eprintln!("wrote {md}");
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
        no_tensorboard,
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
        command: store::shell_command(),
        plain,
        stop_after,
        threads,
        cuda_graphs,
        fork_from,
        keep_weights_from,
        tensorboard: !no_tensorboard,
    };
    let summary = match trainer::train(&cfg, &opts)? {
        Outcome::Finished(s) => s,
        Outcome::Paused { epochs_done } => {
            println!("paused after epoch {epochs_done}; continue with --resume --out {}", run_dir.display());
            return Ok(());
        }
        Outcome::Interrupted { signal, epochs_done, step } => {
            let at = if step == 0 {
                format!("after epoch {epochs_done}")
            } else {
                format!("after step {step} of epoch {}", epochs_done + 1)
            };
            // The command as typed, which already names the data, threads and so on.
            let again = if opts.resume { opts.command.clone() } else { format!("{} --resume", opts.command) };
            eprintln!(
                "stopped by {} {at}, checkpoint written in {}; continue exactly from there with:\n  {again}",
                longtail::interrupt::name(signal),
                run_dir.display()
            );
            std::process::exit(longtail::interrupt::EXIT_INTERRUPTED);
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

fn run_status(paths: &[PathBuf]) -> Result<()> {
    use longtail::report::status::{find_runs, progress, table};
    let now = std::time::SystemTime::now();
    let rows = find_runs(paths)?.iter().map(|d| progress(d, now)).collect::<Result<Vec<_>>>()?;
    print!("{}", table(&rows));
    Ok(())
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
                subset::check_rho("--rho", rho, train.len(), kind.num_classes())?;
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
            subset::check_rho("--rho", rho, train.len(), kind.num_classes())?;
            let idx = subset::long_tailed_indices(&train.labels, kind.num_classes(), rho, seed);
            let text = subset::format_indices(&idx);
            match out {
                Some(p) => {
                    store::atomic_write(&p, text.as_bytes())?;
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
    if matches!(cli.command, Command::Train(_) | Command::Reproduce { .. }) {
        // A training stops at its next step on SIGTERM / SIGINT / SIGUSR1, with a checkpoint.
        longtail::interrupt::install();
    }
    let result = match cli.command {
        Command::Train(args) => run_train(args),
        Command::Eval { run_dir, data, exit_threshold, timing, precise_bn, average_from, .. }
            if run_dir.extension().is_some_and(|e| e == "safetensors") =>
        {
            if !exit_threshold.is_empty() || timing || precise_bn.is_some() || average_from.is_some() {
                Err(anyhow::anyhow!(
                    "{}: a zoo file is evaluated as it is (full depth, exits, early exit at the configured τ); \
                     --exit-threshold, --timing, --precise-bn and --average-from need a run directory",
                    run_dir.display()
                ))
            } else {
                longtail::eval::zoo::evaluate(&run_dir, data.as_deref())
                    .map(|outcome| print!("{}", longtail::report::evaluation::render(&outcome)))
            }
        }
        Command::Eval { run_dir, data, weights, exit_threshold, timing, precise_bn, average_from } => {
            let request =
                EvalRequest { run_dir, data, weights, thresholds: exit_threshold, timing, precise_bn, average_from };
            evaluate_run(&request).map(|outcome| print!("{}", longtail::report::evaluation::render(&outcome)))
        }
        Command::Select { run_dir, data, per_class } => {
            let request = longtail::eval::select::SelectRequest { run_dir, data, per_class };
            longtail::eval::select::select_on_validation(&request).and_then(|chosen| {
                let plot = request.run_dir.join(longtail::eval::select::SELECTION_PLOT);
                longtail::report::plots::selection(&chosen.selection, &chosen.run_name, &plot)?;
                print!("{}", chosen.selection.render());
                Ok(())
            })
        }
        Command::Rebalance { run_dir, data, per_class, methods } => {
            let methods = if methods.is_empty() { longtail::rebalance::Method::ALL.to_vec() } else { methods };
            let request = longtail::rebalance::RebalanceRequest { run_dir, data, per_class, methods };
            longtail::rebalance::rebalance_run(&request).and_then(|report| {
                let plot = request.run_dir.join(longtail::rebalance::RELIABILITY_PLOT);
                let panels: Vec<_> = report.scored().into_iter().map(|(n, s)| (n, &s.calibration)).collect();
                let title = request.run_dir.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
                longtail::report::plots::reliability(&panels, &title, &plot)?;
                print!("{}", report.render());
                Ok(())
            })
        }
        Command::Publish { run_dir, name, results, force, zoo } => {
            longtail::report::publish::publish(&run_dir, name.as_deref(), &results, force).and_then(|done| {
                done.notes.iter().for_each(|n| eprintln!("{n}"));
                println!("wrote {}", done.path.display());
                if zoo {
                    for file in longtail::eval::zoo::export(&run_dir, &done.path.with_extension(""), true)? {
                        println!("wrote {}", file.display());
                    }
                }
                Ok(())
            })
        }
        Command::Report { run_dirs } => run_dirs.iter().try_for_each(|d| {
            let md = longtail::report::run_report::write(d)?;
            println!("wrote {} (and report.html, plots)", md.display());
            Ok(())
        }),
        Command::Compare { runs, by, png, md } => {
            let runs: Vec<&Path> = runs.iter().map(|p| p.as_path()).collect();
            longtail::report::compare::compare(&runs, by.as_deref(), &png).and_then(|text| {
                print!("{text}");
                md.map_or(Ok(()), |path| longtail::store::atomic_write(&path, text.as_bytes()))
            })
        }
        Command::Status { paths } => run_status(&paths),
        Command::Diff { a, b } => match longtail::report::diff::diff(&a, &b) {
            Ok(d) => {
                print!("{}", d.render());
                return if d.same() { ExitCode::SUCCESS } else { ExitCode::from(1) };
            }
            Err(e) => Err(e),
        },
        Command::Reproduce { command: ReproduceCommand::Report(args) } => run_reproduce(args),
        Command::Reproduce { command: ReproduceCommand::StageTwo { results } } => {
            longtail::report::stage_two::write(&results).map(|p| println!("wrote {}", p.display()))
        }
        Command::Reproduce { command: ReproduceCommand::Sweep(args) } => run_sweep(args),
        Command::Reproduce { command: ReproduceCommand::Task { plan, index } } => {
            match longtail::reproduce::slurm::run_task(&plan, index) {
                Ok(code) => return ExitCode::from(code as u8),
                Err(e) => Err(e),
            }
        }
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
