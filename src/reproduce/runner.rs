//! Train every planned run (`plan::PlannedRun`) that is not finished yet: start it, resume it, or leave it alone,
//! with up to `jobs` trainings at once (each a child `longtail train` process with its own log,
//! so one crash never takes the others down and every run stays resumable on its own).
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::plan::PlannedRun;
use crate::run::{self, status, RunDir, RunStatus};

/// How to launch the trainings (also what a SLURM array's tasks read, `slurm::ArrayPlan`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunnerOptions {
    /// The `longtail` binary to run (normally the current executable).
    pub exe: PathBuf,
    /// Project root: config paths in the manifest are relative to it.
    pub root: PathBuf,
    pub runs: PathBuf,
    pub jobs: usize,
    /// libtorch threads per training (default: cores / jobs on CPU).
    pub threads: Option<usize>,
    pub data: Option<PathBuf>,
    pub device: Option<String>,
    pub overrides: Vec<String>,
    /// Resume runs the divergence guard stopped (they will usually diverge again).
    pub retry_failed: bool,
    /// `train --keep-weights-from N` for every training.
    pub keep_weights_from: Option<usize>,
}

/// One training to launch.
struct Job {
    run: PlannedRun,
    dir: PathBuf,
    resume: bool,
}

/// What happened to each config this call tried to train: (config stem, succeeded).
pub fn train_missing(runs: &[PlannedRun], opts: &RunnerOptions) -> Result<Vec<(String, bool)>> {
    std::fs::create_dir_all(&opts.runs).with_context(|| format!("cannot create {}", opts.runs.display()))?;
    let (mut queue, mut results) = queue_unfinished(runs, opts);
    let jobs = opts.jobs.max(1);
    let threads = threads_per_job(opts, jobs);
    let total = queue.len();
    let mut running: Vec<(Job, Child, Instant)> = Vec::new();
    let mut started = 0;
    let (mut last_progress, mut last_report) = (String::new(), Instant::now());
    let mut forwarded = false;
    while !queue.is_empty() || !running.is_empty() {
        if let Some(signal) = crate::interrupt::requested().filter(|_| !forwarded) {
            // Each training checkpoints at its next step and exits; nothing new starts.
            forwarded = true;
            eprintln!(
                "{}: asking {} running training(s) to checkpoint and stop; {} queued left for the next call",
                crate::interrupt::name(signal),
                running.len(),
                queue.len()
            );
            queue.clear();
            running.iter().for_each(|(_, child, _)| crate::interrupt::send(child.id(), libc::SIGTERM));
        }
        while running.len() < jobs && !queue.is_empty() {
            let job = queue.remove(0);
            started += 1;
            let child = spawn(&job, opts, threads)?;
            eprintln!(
                "[{started}/{total}] {} {} (log: {})",
                if job.resume { "resuming" } else { "starting" },
                job.run.name,
                log_path(&job.dir).display()
            );
            running.push((job, child, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(500));
        // A progress line per minute when some run has finished an epoch since the last one.
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = Instant::now();
            let progress = progress_line(running.iter().map(|(job, _, _)| job));
            if progress != last_progress {
                eprintln!("epochs done: {progress} ({} queued)", queue.len());
                last_progress = progress;
            }
        }
        let mut i = 0;
        while i < running.len() {
            if let Some(exit) = running[i].1.try_wait()? {
                let (job, _, t0) = running.remove(i);
                let minutes = t0.elapsed().as_secs_f64() / 60.0;
                eprintln!(
                    "{} {} after {minutes:.1} min (log: {})",
                    job.run.name,
                    outcome(&job, exit),
                    log_path(&job.dir).display()
                );
                results.push((job.run.name.clone(), exit.success()));
            } else {
                i += 1;
            }
        }
    }
    Ok(results)
}

/// The rows still to train, as jobs (new or resumed), and the rows left alone as results: a run
/// that does not read is reported and skipped, a failed one waits for `--retry-failed`.
fn queue_unfinished(runs: &[PlannedRun], opts: &RunnerOptions) -> (Vec<Job>, Vec<(String, bool)>) {
    let (mut queue, mut results) = (Vec::new(), Vec::new());
    for run in runs {
        let dir = run.run_dir(&opts.runs);
        let standing = match status(&dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: {e:#}; skipped (repair or remove the file)", run.name);
                results.push((run.name.clone(), false));
                continue;
            }
        };
        match standing {
            RunStatus::Finished(s) => eprintln!("{}: finished ({:.2} last), skipped", run.name, s.last.overall),
            RunStatus::Failed(msg) if !opts.retry_failed => {
                eprintln!("{}: stopped earlier ({msg}); skipped (--retry-failed resumes it)", run.name)
            }
            RunStatus::Failed(_) => {
                let _ = std::fs::remove_file(RunDir::new(&dir).file(run::FAILURE_FILE));
                queue.push(Job { run: run.clone(), dir, resume: true });
            }
            RunStatus::Partial { .. } => queue.push(Job { run: run.clone(), dir, resume: true }),
            RunStatus::NotStarted => {
                // A directory with a config but no checkpoint yet (killed in the first epoch)
                // resumes too: the trainer refuses to start over an existing run.
                let resume = RunDir::new(&dir).exists(run::CONFIG_FILE);
                queue.push(Job { run: run.clone(), dir, resume });
            }
        }
    }
    (queue, results)
}

/// libtorch threads per training: `--threads`, else on a CPU with several jobs an even share
/// of the cores (they would otherwise each take all of them), else libtorch's default.
fn threads_per_job(opts: &RunnerOptions, jobs: usize) -> Option<usize> {
    opts.threads.or_else(|| {
        let cpu = opts.device.as_deref().is_none_or(|d| d == "cpu" || d == "auto") && !tch::Cuda::is_available();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        (cpu && jobs > 1).then(|| (cores / jobs).max(1))
    })
}

/// "model-13 64/200 · reslt-official-r50 9/200": the epochs each running training has done.
fn progress_line<'a>(running: impl Iterator<Item = &'a Job>) -> String {
    running
        .map(|job| match status(&job.dir) {
            Ok(RunStatus::Partial { epochs_done, epochs }) => format!("{} {epochs_done}/{epochs}", job.run.name),
            _ => format!("{} starting", job.run.name),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// What became of a training that exited with `exit`, read from its run directory (and, when it
/// failed, the last line of its log).
fn outcome(job: &Job, exit: std::process::ExitStatus) -> String {
    let mut outcome = match status(&job.dir) {
        Ok(RunStatus::Finished(s)) => format!("finished: best {:.2}, last {:.2}", s.best.overall, s.last.overall),
        Ok(RunStatus::Failed(msg)) => format!("stopped: {msg}"),
        Ok(RunStatus::Partial { .. }) if exit.code() == Some(crate::interrupt::EXIT_INTERRUPTED) => {
            "stopped on request with a checkpoint (resumable)".to_string()
        }
        Ok(RunStatus::Partial { epochs_done, epochs }) => format!("exited at epoch {epochs_done}/{epochs}"),
        Ok(RunStatus::NotStarted) => format!("exited before its first epoch ({exit})"),
        Err(e) => format!("left a run that does not read: {e:#}"),
    };
    if !exit.success() {
        if let Some(line) = last_line(&log_path(&job.dir)) {
            outcome.push_str(&format!("; its log ends: {line}"));
        }
    }
    outcome
}

/// The last non-empty line of a log (where a failed training says why).
fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string())
}

/// The log of a run sits beside its directory, so it exists before the directory does.
pub fn log_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".log");
    dir.with_file_name(name)
}

fn spawn(job: &Job, opts: &RunnerOptions, threads: Option<usize>) -> Result<Child> {
    let log_file = log_path(&job.dir);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .with_context(|| format!("cannot open {}", log_file.display()))?;
    let mut cmd = Command::new(&opts.exe);
    cmd.current_dir(&opts.root)
        .arg("train")
        .arg("--config")
        .arg(&job.run.config)
        .arg("--out")
        .arg(std::path::absolute(&job.dir)?)
        .arg("--plain");
    if job.resume {
        cmd.arg("--resume");
    }
    if let Some(t) = threads {
        cmd.arg("--threads").arg(t.to_string());
    }
    if let Some(d) = &opts.data {
        cmd.arg("--data").arg(std::path::absolute(d)?);
    }
    if let Some(d) = &opts.device {
        cmd.arg("--device").arg(d);
    }
    for o in opts.overrides.iter().chain(&job.run.overrides) {
        cmd.arg("--set").arg(o);
    }
    if let Some(n) = opts.keep_weights_from {
        cmd.arg("--keep-weights-from").arg(n.to_string());
    }
    // Its own process group: Ctrl-C reaches this runner alone, which asks each training to stop
    // once (train_missing), so a training never sees the request twice.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    cmd.spawn().with_context(|| format!("cannot start {}", opts.exe.display()))
}
