//! Run directories that survive careless and hostile use: `--out` at a folder that is not a
//! run, a torn or overlong `metrics.jsonl`, a `state.json` that lies, a missing `state.json`.
//! Tiny trainings (ResNet-20 4/8/8, 16 images per class, batch 32) on the synthetic fixture.
mod common;

use std::path::Path;

use longtail::config::Config;
use longtail::run::{self, RunDir, TrainState};
use longtail::store;
use longtail::train::trainer::{train, Outcome, TrainOptions};

fn tiny(epochs: usize) -> Config {
    common::tiny_config(epochs, &["eval.every=1"])
}

fn options(dir: &Path, resume: bool, stop_after: Option<usize>) -> TrainOptions {
    TrainOptions { resume, stop_after, ..common::train_options(dir, Some(common::fixture_cifar10())) }
}

/// A run of `epochs` stopped after `done` of them.
fn paused_run(epochs: usize, done: usize) -> (tempfile::TempDir, Config) {
    let cfg = tiny(epochs);
    let dir = tempfile::tempdir().unwrap();
    match train(&cfg, &options(dir.path(), false, Some(done))).unwrap() {
        Outcome::Paused { epochs_done } => assert_eq!(epochs_done, done),
        _ => panic!("expected a paused run"),
    }
    (dir, cfg)
}

fn error_of(cfg: &Config, opts: &TrainOptions) -> String {
    match train(cfg, opts) {
        Ok(_) => panic!("expected {} to be refused", opts.run_dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn out_at_a_folder_of_other_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("best.ot"), "a user's file").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    let err = error_of(&tiny(1), &options(dir.path(), false, None));
    assert!(err.contains("other things in it") && err.contains("best.ot") && err.contains("notes.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("best.ot")).unwrap(), "a user's file");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "nothing was added: {names:?}");
    // --resume does not make such a folder a run either.
    assert!(error_of(&tiny(1), &options(dir.path(), true, None)).contains("other things in it"));
}

#[test]
fn out_at_a_folder_of_runs_or_at_a_file_is_refused() {
    let (runs, cfg) = paused_run(2, 1);
    let parent = runs.path().parent().unwrap().join(format!("runs-{}", std::process::id()));
    std::fs::create_dir_all(&parent).unwrap();
    let inside = parent.join("one-run");
    std::fs::rename(runs.path(), &inside).unwrap();
    let err = error_of(&cfg, &options(&parent, false, None));
    assert!(err.contains("other things in it") && err.contains("one-run"), "{err}");
    let file = parent.join("file.txt");
    std::fs::write(&file, "x").unwrap();
    assert!(error_of(&cfg, &options(&file, false, None)).contains("is a file"));
    std::fs::remove_dir_all(&parent).unwrap();
}

#[test]
fn a_torn_last_metrics_line_is_read_around_and_repaired_on_resume() {
    let (dir, cfg) = paused_run(3, 2);
    let metrics = dir.path().join(run::METRICS_FILE);
    let whole = std::fs::read_to_string(&metrics).unwrap();
    // A full disk cut the next append short.
    std::fs::write(&metrics, format!("{whole}{{\"epoch\":3,\"lr\":0.1,\"train_")).unwrap();
    assert_eq!(RunDir::new(dir.path()).read_metrics().unwrap().len(), 2, "status and report still read the run");
    let Outcome::Finished(summary) = train(&cfg, &options(dir.path(), true, None)).unwrap() else {
        panic!("expected the resumed run to finish")
    };
    assert_eq!(summary.last.epoch, 3);
    let epochs: Vec<usize> = RunDir::new(dir.path()).read_metrics().unwrap().iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, vec![1, 2, 3]);
}

#[test]
fn a_damaged_line_that_is_not_the_last_is_an_error_naming_it() {
    let (dir, cfg) = paused_run(3, 2);
    let metrics = dir.path().join(run::METRICS_FILE);
    let text = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, text.replacen("{\"epoch\":1", "{\"epoch\":", 1)).unwrap();
    let err = error_of(&cfg, &options(dir.path(), true, None));
    assert!(err.contains("metrics.jsonl line 1"), "{err}");
}

#[test]
fn metrics_lines_beyond_the_checkpoint_are_dropped_on_resume() {
    let (dir, cfg) = paused_run(3, 1);
    let metrics = dir.path().join(run::METRICS_FILE);
    let line = std::fs::read_to_string(&metrics).unwrap();
    // A run killed between its metrics line and its checkpoint: epoch 2 is logged, not saved.
    std::fs::write(&metrics, format!("{line}{}", line.replacen("{\"epoch\":1", "{\"epoch\":2", 1))).unwrap();
    train(&cfg, &options(dir.path(), true, None)).unwrap();
    let epochs: Vec<usize> = RunDir::new(dir.path()).read_metrics().unwrap().iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, vec![1, 2, 3], "epoch 2 appears once, from the resumed training");
}

fn edit_state(dir: &Path, edit: impl FnOnce(&mut TrainState)) {
    let path = dir.join(run::STATE_FILE);
    let mut state: TrainState = store::read_json(&path).unwrap();
    edit(&mut state);
    store::write_json(&path, &state).unwrap();
}

#[test]
fn a_state_file_that_points_elsewhere_or_beyond_the_run_is_refused() {
    let (dir, cfg) = paused_run(3, 1);
    let resume = options(dir.path(), true, None);
    edit_state(dir.path(), |s| s.checkpoint = run::BEST_WEIGHTS.into());
    let err = error_of(&cfg, &resume);
    assert!(err.contains("best.ot") && err.contains("ckpt-0001.ot"), "{err}");
    edit_state(dir.path(), |s| s.checkpoint = "../other-run/ckpt-0001.ot".into());
    assert!(error_of(&cfg, &resume).contains("other-run"));
    edit_state(dir.path(), |s| {
        s.checkpoint = "ckpt-0009.ot".into();
        s.epochs_done = 9;
    });
    let err = error_of(&cfg, &resume);
    assert!(err.contains("9 epochs done") && err.contains("has 3"), "{err}");
    assert!(!dir.path().join(run::SUMMARY_FILE).exists(), "no finished summary was written");
}

#[test]
fn a_checkpoint_without_momentum_is_refused() {
    let (dir, cfg) = paused_run(3, 1);
    // A weights file put where the training checkpoint belongs, with its checksum (a copy that
    // carries its checksum along passes the check; the missing momentum must still be caught).
    for suffix in ["", ".sha256"] {
        std::fs::copy(
            dir.path().join(format!("{}{suffix}", run::BEST_WEIGHTS)),
            dir.path().join(format!("ckpt-0001.ot{suffix}")),
        )
        .unwrap();
    }
    let err = error_of(&cfg, &options(dir.path(), true, None));
    assert!(err.contains("no momentum"), "{err}");
}

#[test]
fn a_missing_state_file_beside_checkpoints_does_not_start_over() {
    let (dir, cfg) = paused_run(3, 1);
    std::fs::remove_file(dir.path().join(run::STATE_FILE)).unwrap();
    let err = error_of(&cfg, &options(dir.path(), true, None));
    assert!(err.contains("ckpt-0001.ot") && err.contains("no state.json"), "{err}");
    assert_eq!(RunDir::new(dir.path()).read_metrics().unwrap().len(), 1, "the run was not restarted");
}
