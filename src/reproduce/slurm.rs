//! A plan's runs as a SLURM job array: one task per run, each `longtail reproduce task PLAN N`,
//! which trains run N (or resumes it, or skips it when finished) with its log beside the run,
//! exactly as the local queue does (`runner`). Before the time limit SLURM sends the batch shell
//! SIGUSR1 (`--signal=B:USR1@…`); the shell asks the training to stop, which checkpoints at its
//! next step and exits 75, and then requeues the task (`scontrol requeue`), whose next start
//! resumes from that checkpoint. A cancel or a preemption (SIGTERM) checkpoints the same way;
//! SLURM's own requeue then resumes it. A second job, run after every task has ended
//! (`--dependency=afterany`), renders the table.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::plan::PlannedRun;
use super::runner::{train_missing, RunnerOptions};

/// The plan a SLURM array runs, written beside the runs (`<runs>/slurm/plan.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayPlan {
    pub options: RunnerOptions,
    pub runs: Vec<PlannedRun>,
}

/// The resources of one task and where the array goes.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub cpus_per_task: usize,
    /// `--mem`, e.g. `8G`.
    pub mem: String,
    /// GPUs per task (`--gres=gpu:N`); 0 for none.
    pub gpus: usize,
    /// `--time`, e.g. `6:00:00`, or minutes.
    pub time: String,
    pub partition: Option<String>,
    /// Seconds before the time limit at which the task checkpoints and requeues itself.
    pub signal_before: u32,
    /// More `#SBATCH` lines, as given (e.g. `--account=lab`).
    pub extra: Vec<String>,
    /// Submit the array (and the table job after it) with `sbatch`.
    pub submit: bool,
}

/// Where the array's files go: `<runs>/slurm/`.
pub fn slurm_dir(runs: &Path) -> PathBuf {
    runs.join("slurm")
}

pub const PLAN_FILE: &str = "plan.json";
pub const ARRAY_SCRIPT: &str = "array.sbatch";
pub const TABLE_SCRIPT: &str = "table.sbatch";

/// Write `plan.json`, `array.sbatch` and `table.sbatch` (which runs `render`, a longtail command
/// line, once every task has ended) into `<runs>/slurm/`; with `submit`, submit both. Returns
/// the scripts' folder and, when submitted, the array's job id.
pub fn write_array(
    plan: &ArrayPlan,
    slurm: &SlurmOptions,
    render: &[String],
    name: &str,
) -> Result<(PathBuf, Option<String>)> {
    if plan.runs.is_empty() {
        bail!("nothing to put in a SLURM array: the plan has no runs");
    }
    check_time(&slurm.time)?;
    let dir = slurm_dir(&plan.options.runs);
    std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("cannot create {}", dir.display()))?;
    let plan_path = dir.join(PLAN_FILE);
    crate::store::write_json(&plan_path, plan)?;
    let array = array_script(plan, slurm, &plan_path, name);
    crate::store::atomic_write(&dir.join(ARRAY_SCRIPT), array.as_bytes())?;
    let table = table_script(plan, slurm, render, name);
    crate::store::atomic_write(&dir.join(TABLE_SCRIPT), table.as_bytes())?;
    if !slurm.submit {
        return Ok((dir, None));
    }
    let array_id = sbatch(&dir, &[ARRAY_SCRIPT.to_string()])?;
    sbatch(&dir, &[format!("--dependency=afterany:{array_id}"), TABLE_SCRIPT.to_string()])?;
    Ok((dir, Some(array_id)))
}

/// `sbatch --parsable ARGS` in `dir`; the job id it prints.
fn sbatch(dir: &Path, args: &[String]) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run sbatch (is SLURM installed here, and SLURM_CONF set where it needs to be?)")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    Ok(text.trim().split(';').next().unwrap_or("").to_string())
}

/// SLURM's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
fn check_time(time: &str) -> Result<()> {
    let (days, rest) = match time.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, time),
    };
    let numbers =
        |s: &str| !s.is_empty() && s.split(':').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let parts = rest.split(':').count();
    let ok = days.is_none_or(|d| numbers(d) && !d.contains(':')) && numbers(rest) && parts <= 3;
    if !ok {
        bail!("--slurm-time {time:?} is not a SLURM time: give minutes (240), HH:MM:SS (4:00:00) or D-HH:MM:SS");
    }
    Ok(())
}

/// The `#SBATCH` lines every job of the array shares.
fn resources(slurm: &SlurmOptions) -> Vec<String> {
    let mut lines = vec![
        format!("--cpus-per-task={}", slurm.cpus_per_task),
        format!("--mem={}", slurm.mem),
        format!("--time={}", slurm.time),
    ];
    if slurm.gpus > 0 {
        lines.push(format!("--gres=gpu:{}", slurm.gpus));
    }
    if let Some(p) = &slurm.partition {
        lines.push(format!("--partition={p}"));
    }
    lines.extend(slurm.extra.iter().cloned());
    lines
}

fn sbatch_lines(lines: &[String]) -> String {
    lines.iter().map(|l| format!("#SBATCH {l}\n")).collect()
}

/// Single-quote `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn array_script(plan: &ArrayPlan, slurm: &SlurmOptions, plan_path: &Path, name: &str) -> String {
    let o = &plan.options;
    let mut lines = vec![
        format!("--job-name={name}"),
        format!("--array=0-{}", plan.runs.len() - 1),
        "--requeue".to_string(),
        format!("--signal=B:USR1@{}", slurm.signal_before),
        "--open-mode=append".to_string(),
        format!("--output={}", slurm_dir(&o.runs).join("logs/%A_%a.out").display()),
    ];
    lines.extend(resources(slurm));
    let names: String = plan.runs.iter().enumerate().map(|(i, r)| format!("#   {i}: {}\n", r.name)).collect();
    format!(
        r#"#!/bin/bash
# One task per run of {plan} (written by longtail; rerun the command that wrote it to change it).
# Each task trains its run into {runs}/<name> (log: <name>.log beside it), resuming it when it
# has a checkpoint and skipping it when it is finished.
{names}{sbatch}
cd {root}
{exe} reproduce task {plan} "$SLURM_ARRAY_TASK_ID" &
child=$!
requeue=0
# SIGUSR1 comes {lead} s before the time limit: checkpoint, then requeue. SIGTERM (scancel,
# preemption): checkpoint and end; a preempting SLURM requeues the task itself.
trap 'requeue=1; kill -TERM "$child" 2>/dev/null' USR1
trap 'kill -TERM "$child" 2>/dev/null' TERM
status=0
while :; do
  wait "$child"; status=$?
  # A trapped signal ends `wait` early with 128+n while the training is still checkpointing.
  kill -0 "$child" 2>/dev/null || break
done
if [ "$status" -eq 75 ] && [ "$requeue" -eq 1 ]; then
  echo "task $SLURM_ARRAY_TASK_ID checkpointed before the time limit; requeued"
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
fi
exit "$status"
"#,
        plan = quote(&plan_path.display().to_string()),
        runs = o.runs.display(),
        sbatch = sbatch_lines(&lines),
        root = quote(&o.root.display().to_string()),
        exe = quote(&o.exe.display().to_string()),
        lead = slurm.signal_before,
    )
}

fn table_script(plan: &ArrayPlan, slurm: &SlurmOptions, render: &[String], name: &str) -> String {
    let o = &plan.options;
    let mut lines = vec![
        format!("--job-name={name}-table"),
        format!("--output={}", slurm_dir(&o.runs).join("logs/table-%j.out").display()),
        "--cpus-per-task=1".to_string(),
        format!("--mem={}", slurm.mem),
        "--time=30".to_string(),
    ];
    lines.extend(slurm.partition.iter().map(|p| format!("--partition={p}")));
    lines.extend(slurm.extra.iter().cloned());
    let command: Vec<String> =
        std::iter::once(o.exe.display().to_string()).chain(render.iter().cloned()).map(|a| quote(&a)).collect();
    format!(
        "#!/bin/bash\n# Renders the table once every task of the array has ended (submitted with --dependency=afterany).\n{}\ncd {}\n{}\n",
        sbatch_lines(&lines),
        quote(&o.root.display().to_string()),
        command.join(" ")
    )
}

/// `longtail reproduce task PLAN N`: train run N of the plan (start, resume, or leave a finished
/// one alone), passing a stop request on to the training. The exit status is the training's:
/// 0 finished, 75 stopped with a checkpoint, else failed.
pub fn run_task(plan_path: &Path, index: usize) -> Result<i32> {
    let text =
        crate::store::read_regular_string(plan_path).with_context(|| format!("cannot read {}", plan_path.display()))?;
    let plan: ArrayPlan =
        serde_json::from_str(&text).with_context(|| format!("{} is not a plan", plan_path.display()))?;
    let Some(run) = plan.runs.get(index) else {
        bail!(
            "{} has {} runs (tasks 0–{}); there is no task {index}",
            plan_path.display(),
            plan.runs.len(),
            plan.runs.len().saturating_sub(1)
        );
    };
    train_missing(std::slice::from_ref(run), &RunnerOptions { jobs: 1, ..plan.options.clone() })?;
    Ok(match crate::run::status(&run.run_dir(&plan.options.runs))? {
        crate::run::RunStatus::Finished(_) => 0,
        _ if crate::interrupt::requested().is_some() => crate::interrupt::EXIT_INTERRUPTED,
        _ => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_times() {
        for ok in ["240", "30:00", "4:00:00", "1-12", "1-12:30", "2-00:00:00"] {
            assert!(check_time(ok).is_ok(), "{ok}");
        }
        for bad in ["", "4h", "1:2:3:4", "-1", "1-", "a-1:00", ":30"] {
            assert!(check_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
