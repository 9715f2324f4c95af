//! SIGTERM / SIGINT / SIGUSR1 stop a training at the next step with a checkpoint, and resuming
//! from it is the run that was never stopped: same metrics, same weights (`longtail diff`).
//! Tiny trainings (ResNet-20 4/8/8, 16 images per class: 5 steps an epoch) on the synthetic
//! fixture, through the binary, as a scheduler would meet it.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use longtail::run::{self, TrainState};
use longtail::store;

const TINY: &str = "device = \"cpu\"\n[data]\nrho = 1\nmax_per_class = 16\n\
    [model]\narch = \"resnet20\"\nwidths = [4, 8, 8]\n\
    [train]\nrecipe = \"ldam\"\nepochs = EPOCHS\nbatch_size = 32\nthreads = 1\n\
    [eval]\nmax_test_images = 100\nevery = 1\n";

fn config(dir: &Path, epochs: usize) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, TINY.replace("EPOCHS", &epochs.to_string())).unwrap();
    path
}

/// `longtail train` into `out`, with the test hook raising SIGTERM after `signal_after` steps.
fn train(config: &Path, out: &Path, resume: bool, signal_after: Option<usize>) -> Output {
    let data = common::fixture_cifar10();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_longtail"));
    cmd.args(["train", "--plain", "--config"]).arg(config).arg("--out").arg(out).arg("--data").arg(data);
    if resume {
        cmd.arg("--resume");
    }
    if let Some(n) = signal_after {
        cmd.env("LONGTAIL_TEST_SIGNAL_AFTER_STEPS", n.to_string());
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn state(run: &Path) -> TrainState {
    store::read_json(&run.join(run::STATE_FILE)).unwrap()
}

fn checkpoints(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ckpt-") && n.ends_with(".ot"))
        .collect();
    names.sort();
    names
}

fn same_run(a: &Path, b: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_longtail")).arg("diff").arg(a).arg(b).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "the resumed run differs from the uninterrupted one:\n{text}");
}

#[test]
fn a_signal_mid_epoch_checkpoints_there_and_resuming_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 2);
    let whole = dir.path().join("whole");
    let o = train(&cfg, &whole, false, None);
    assert!(o.status.success(), "{}", stderr(&o));

    let split = dir.path().join("split");
    let o = train(&cfg, &split, false, Some(3));
    assert_eq!(o.status.code(), Some(longtail::interrupt::EXIT_INTERRUPTED), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("stopped by SIGTERM after step 3 of epoch 1") && err.contains("--resume"), "{err}");
    let st = state(&split);
    assert_eq!((st.epochs_done, st.step, st.checkpoint.as_str()), (0, 3, "ckpt-0000-00003.ot"));
    assert_eq!(st.partial_epoch.as_ref().map(|p| p.seen), Some(96), "3 batches of 32");
    assert_eq!(checkpoints(&split), ["ckpt-0000-00003.ot"]);
    assert!(!split.join(run::SUMMARY_FILE).exists());

    // A second stop in the next epoch, then to the end.
    let o = train(&cfg, &split, true, Some(4));
    assert_eq!(o.status.code(), Some(longtail::interrupt::EXIT_INTERRUPTED), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming") && stderr(&o).contains("step 3 of epoch 1"), "{}", stderr(&o));
    let st = state(&split);
    assert_eq!((st.epochs_done, st.step), (1, 2), "2 steps of epoch 1 left, then 2 of epoch 2");
    assert_eq!(checkpoints(&split), ["ckpt-0001-00002.ot"], "the epoch's checkpoint went once the next was in");
    let o = train(&cfg, &split, true, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(checkpoints(&split), ["ckpt-0002.ot"]);
    same_run(&whole, &split);
    let meta: run::RunMeta = store::read_json(&split.join(run::META_FILE)).unwrap();
    let resumed: Vec<(usize, usize)> = meta.resumes.iter().map(|r| (r.after_epoch, r.after_step)).collect();
    assert_eq!(resumed, [(0, 3), (1, 2)], "each resume records where it continued");
}

#[test]
fn a_signal_at_the_last_step_of_an_epoch_ends_the_epoch_first() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 2);
    let run = dir.path().join("run");
    let o = train(&cfg, &run, false, Some(5));
    assert_eq!(o.status.code(), Some(longtail::interrupt::EXIT_INTERRUPTED), "{}", stderr(&o));
    assert!(stderr(&o).contains("stopped by SIGTERM after epoch 1"), "{}", stderr(&o));
    let st = state(&run);
    assert_eq!((st.epochs_done, st.step, st.partial_epoch.is_none()), (1, 0, true));
    let metrics = std::fs::read_to_string(run.join(run::METRICS_FILE)).unwrap();
    assert_eq!(metrics.lines().count(), 1, "the epoch was evaluated and recorded before stopping");
}

#[test]
fn a_mid_epoch_state_that_lies_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 2);
    let run = dir.path().join("run");
    let o = train(&cfg, &run, false, Some(2));
    assert_eq!(o.status.code(), Some(longtail::interrupt::EXIT_INTERRUPTED), "{}", stderr(&o));
    let good = std::fs::read_to_string(run.join(run::STATE_FILE)).unwrap();
    // A step beyond the epoch, and a step without the epoch's sums.
    let mut st = state(&run);
    st.step = 7;
    st.checkpoint = "ckpt-0000-00007.ot".into();
    std::fs::rename(run.join("ckpt-0000-00002.ot"), run.join("ckpt-0000-00007.ot")).unwrap();
    store::write_json(&run.join(run::STATE_FILE), &st).unwrap();
    let o = train(&cfg, &run, true, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("step 7 of an epoch of 5 steps"), "{}", stderr(&o));
    std::fs::rename(run.join("ckpt-0000-00007.ot"), run.join("ckpt-0000-00002.ot")).unwrap();
    let mut st: TrainState = serde_json::from_str(&good).unwrap();
    st.partial_epoch = None;
    store::write_json(&run.join(run::STATE_FILE), &st).unwrap();
    let o = train(&cfg, &run, true, None);
    assert!(stderr(&o).contains("without that epoch's sums"), "{}", stderr(&o));
    // The true state still resumes.
    std::fs::write(run.join(run::STATE_FILE), good).unwrap();
    let o = train(&cfg, &run, true, None);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn reproduce_passes_a_sigterm_to_its_trainings_and_says_they_resume() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), 500);
    let manifest = dir.path().join("m.toml");
    std::fs::write(
        &manifest,
        "title = \"t\"\n[[row]]\ngroup = \"g\"\nlabel = \"Tiny\"\nconfig = \"tiny.toml\"\nsource = \"test\"\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_longtail"))
        .args(["reproduce", "report", "--threads", "1", "--manifest"])
        .arg(&manifest)
        .arg("--runs")
        .arg(&runs)
        .arg("--data")
        .arg(common::fixture_cifar10())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = runs.join("tiny");
    let started = Instant::now();
    while !run.join(run::STATE_FILE).exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "the training never wrote a checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    longtail::interrupt::send(child.id(), libc::SIGTERM);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "reproduce did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(longtail::interrupt::EXIT_INTERRUPTED), "{err}");
    assert!(err.contains("stopped on request with a checkpoint"), "{err}");
    let st = state(&run);
    assert!(st.epochs_done < 500 && !run.join(run::SUMMARY_FILE).exists());
    assert!(run.join(&st.checkpoint).is_file(), "{st:?}");
}
