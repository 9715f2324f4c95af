//! End-to-end training on real CIFAR-10: learning actually happens, and a paused run resumed
//! from its checkpoint ends exactly where an uninterrupted one does.
mod common;

use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use longtail::config::{resolve, Config};
use longtail::report::diff::diff;
use longtail::report::status::{progress, Phase};
use longtail::run::{self, RunDir, TrainState};
use longtail::store;
use longtail::train::trainer::{train, Outcome, TrainOptions};
use tch::Tensor;

fn config(overrides: &[&str]) -> Config {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    resolve("device = \"cpu\"\n[train]\nrecipe = \"ldam\"\n", "test", &o).unwrap()
}

fn options(dir: &Path, resume: bool, stop_after: Option<usize>) -> TrainOptions {
    TrainOptions { resume, stop_after, ..common::train_options(dir, Some(common::fixture_cifar10())) }
}

/// libtorch's random generator is one per process and `train` seeds it, so two trainings running
/// at once in this test binary draw from each other's stream. Tests that compare two runs bit for
/// bit hold this lock alone ([`alone`]); every other training test shares it ([`shared`]).
static TORCH_RNG: RwLock<()> = RwLock::new(());

fn alone() -> RwLockWriteGuard<'static, ()> {
    TORCH_RNG.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn shared() -> RwLockReadGuard<'static, ()> {
    TORCH_RNG.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn finished(outcome: Outcome) -> longtail::run::Summary {
    match outcome {
        Outcome::Finished(s) => *s,
        _ => panic!("expected the run to finish"),
    }
}

#[test]
fn learns_well_above_chance_in_a_few_hundred_steps() {
    let Some(release) = common::real_cifar10() else { return };
    let _rng = shared();
    // Balanced 6,400-image subset, ResNet-20, batch 64: 300 SGD steps.
    let cfg = config(&[
        "data.rho=1",
        "data.max_per_class=640",
        "model.arch=\"resnet20\"",
        "train.batch_size=64",
        "train.epochs=3",
        "train.warmup_epochs=1",
        "train.milestones=[]",
        "train.drop_last=true",
        "eval.max_test_images=2000",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions { data_dir: Some(release), ..options(dir.path(), false, None) };
    let summary = finished(train(&cfg, &opts).unwrap());
    assert_eq!(summary.last.epoch, 3);
    assert!(
        summary.last.overall > 30.0,
        "test accuracy {:.2}% is not clearly above chance (10%)",
        summary.last.overall
    );
    let metrics = RunDir::new(dir.path()).read_metrics().unwrap();
    assert_eq!(metrics.len(), 3);
    assert!(metrics[2].train_loss < metrics[0].train_loss, "training loss did not fall");
}

/// The same check on the synthetic fixture, so a clone without the real release still sees
/// learning happen: its classes are colours and stripes, far from chance after a few dozen steps.
#[test]
fn learns_the_synthetic_classes() {
    let _rng = shared();
    let cfg = tiny_with(2, &["data.max_per_class=64", "train.warmup_epochs=0", "train.milestones=[]"]);
    let dir = tempfile::tempdir().unwrap();
    let summary = finished(train(&cfg, &options(dir.path(), false, None)).unwrap());
    assert!(summary.last.overall > 40.0, "test accuracy {:.2}% on the fixture (chance 10%)", summary.last.overall);
}

fn tiny(epochs: usize) -> Config {
    tiny_with(epochs, &[])
}

/// [`tiny`] with further overrides, which win over its own (they are merged in order).
fn tiny_with(epochs: usize, extra: &[&str]) -> Config {
    let epochs = format!("train.epochs={epochs}");
    let base = [
        "data.rho=1",
        "data.max_per_class=16",
        "model.arch=\"resnet20\"",
        "model.widths=[4, 8, 8]",
        "train.batch_size=32",
        &epochs,
        "train.threads=1",
        "eval.max_test_images=100",
        "eval.every=1",
    ];
    config(&[&base[..], extra].concat())
}

fn weights(dir: &Path) -> Vec<(String, Tensor)> {
    let st: TrainState = store::read_json(&dir.join(run::STATE_FILE)).unwrap();
    let mut w = Tensor::load_multi(dir.join(st.checkpoint)).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn resume_continues_exactly() {
    let _rng = alone();
    let straight = tempfile::tempdir().unwrap();
    let a = finished(train(&tiny(3), &options(straight.path(), false, None)).unwrap());

    let paused = tempfile::tempdir().unwrap();
    match train(&tiny(3), &options(paused.path(), false, Some(1))).unwrap() {
        Outcome::Paused { epochs_done } => assert_eq!(epochs_done, 1),
        _ => panic!("should have paused"),
    }
    let err = train(&tiny(3), &options(paused.path(), false, None)).err().unwrap();
    assert!(err.to_string().contains("--resume"), "{err}");
    // `longtail status` tells a live run from a stopped one by its lock, not by the age of its
    // files: just written but with no process holding it, the paused run is stopped at once;
    // while a process holds the lock it is running, and a second writer is refused by name.
    let now = std::time::SystemTime::now();
    let st = progress(paused.path(), now).unwrap();
    assert_eq!((st.phase, st.epochs_done, st.epochs, st.last.map(|l| l.0)), (Phase::Stopped, 1, 3, Some(1)));
    assert!(st.remaining.is_some_and(|r| r.as_secs_f64() > 0.0));
    {
        let _held = RunDir::new(paused.path()).lock("test").unwrap();
        let later = progress(paused.path(), now + std::time::Duration::from_secs(3600)).unwrap();
        assert_eq!(later.phase, Phase::Running, "locked: running, however old its files");
        let err = train(&tiny(3), &options(paused.path(), true, None)).err().unwrap().to_string();
        assert!(err.contains("is in use by pid") && err.contains("(test, since"), "{err}");
    }
    // Without a lock file (a run made before runs were locked) the age decides, as before.
    std::fs::remove_file(paused.path().join(run::LOCK_FILE)).unwrap();
    assert_eq!(progress(paused.path(), now).unwrap().phase, Phase::Running);
    assert_eq!(progress(paused.path(), now + std::time::Duration::from_secs(3600)).unwrap().phase, Phase::Stopped);
    assert_eq!(progress(straight.path(), now).unwrap().phase, Phase::Finished);
    let err = train(&tiny(4), &options(paused.path(), true, None)).err().unwrap();
    assert!(err.to_string().contains("config differs"), "{err}");
    // The device is a run-time choice: a run started on a GPU resumes on the CPU (its saved
    // config says cuda), and the summary names the invocation that continued it.
    let saved = paused.path().join(run::CONFIG_FILE);
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("device = \"cpu\""), "{text}");
    std::fs::write(&saved, text.replace("device = \"cpu\"", "device = \"cuda\"")).unwrap();
    // Keeping each epoch's weights (an invocation option) changes no number of the run.
    let keep = TrainOptions { keep_weights_from: Some(2), ..options(paused.path(), true, None) };
    let b = finished(train(&tiny(3), &keep).unwrap());

    assert_eq!(a.last, b.last, "same accuracy after resuming");
    assert!(a.resumes.is_empty());
    assert_eq!(b.resumes.len(), 1);
    assert_eq!(b.resumes[0].after_epoch, 1);
    assert_eq!(b.resumes[0].device, "Cpu");
    let (wa, wb) = (weights(straight.path()), weights(paused.path()));
    assert_eq!(wa.len(), wb.len());
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb);
        let diff = (ta - tb).abs().max().double_value(&[]);
        assert!(diff == 0.0, "{na} differs by {diff} after resume");
    }
    assert_eq!(RunDir::new(paused.path()).read_metrics().unwrap().len(), 3);
    // Only the newest checkpoint is kept.
    let ckpts = std::fs::read_dir(paused.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with("ckpt-") && name.ends_with(".ot")
        })
        .count();
    assert_eq!(ckpts, 1);
    // … while the weights of epochs 2 and 3 are kept, those of epoch 3 equal the checkpoint's.
    let kept = |e: usize| paused.path().join(run::kept_weights_file(e));
    assert!(!kept(1).exists() && kept(2).exists());
    let mut last = Tensor::load_multi(kept(3)).unwrap();
    last.sort_by(|a, b| a.0.cmp(&b.0));
    let model: Vec<_> = wb.iter().filter(|(n, _)| n.starts_with("model.")).collect();
    assert_eq!(last.len(), model.len());
    for ((nk, tk), (nc, tc)) in last.iter().zip(model) {
        assert_eq!(nk, nc);
        assert!(tk.equal(tc), "{nk}: kept weights differ from the checkpoint");
    }
    // `longtail diff` says the same by content: config (the device aside), every number of the
    // metrics but wall-clock time, and the weights files both runs have.
    let d = diff(straight.path(), paused.path()).unwrap();
    assert!(d.same(), "{}", d.render());
    let compared: Vec<&str> = d.weights.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(compared, [run::BEST_WEIGHTS, "ckpt-0003.ot"]);
    assert_eq!(d.only_b, [run::kept_weights_file(2), run::kept_weights_file(3)]);
    assert!(d.render().ends_with("the same: every number compared is equal\n"), "{}", d.render());
}

/// `train --fork-from`: a fork starts from the parent's last checkpoint. With the parent's own
/// config it matches the straight run bit for bit; with a changed key it records the change and
/// keeps the parent's first epochs; the parent is left as it was; and keys that shape the
/// parent's epochs (data, model, seed) cannot change.
#[test]
fn fork_continues_from_the_parent_checkpoint() {
    let _rng = alone();
    let straight = tempfile::tempdir().unwrap();
    let a = finished(train(&tiny(3), &options(straight.path(), false, None)).unwrap());
    let parent = tempfile::tempdir().unwrap();
    assert!(matches!(train(&tiny(3), &options(parent.path(), false, Some(1))).unwrap(), Outcome::Paused { .. }));
    let parent_state = std::fs::read_to_string(parent.path().join(run::STATE_FILE)).unwrap();
    let parent_metrics = RunDir::new(parent.path()).read_metrics().unwrap();
    let fork_opts =
        |out: &Path| TrainOptions { fork_from: Some(parent.path().to_path_buf()), ..options(out, false, None) };

    let forks = tempfile::tempdir().unwrap();
    let same = forks.path().join("same");
    let b = finished(train(&tiny(3), &fork_opts(&same)).unwrap());
    assert_eq!(a.last, b.last, "a fork with the parent's config is the straight run");
    for ((na, ta), (nb, tb)) in weights(straight.path()).iter().zip(&weights(&same)) {
        assert_eq!(na, nb);
        assert!((ta - tb).abs().max().double_value(&[]) == 0.0, "{na} differs after the fork");
    }
    let f = b.forked_from.as_ref().expect("the summary names the parent");
    assert_eq!((f.after_epoch, f.changed.len()), (1, 0));
    assert_eq!(f.parent, parent.path().display().to_string());
    assert!(b.resumes.is_empty(), "a fork is not a resume");
    let metrics = RunDir::new(&same).read_metrics().unwrap();
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics[0].train_loss, parent_metrics[0].train_loss);

    let mut smoothed = tiny(3);
    smoothed.loss.label_smoothing = 0.1;
    let c = finished(train(&smoothed, &fork_opts(&forks.path().join("smoothed"))).unwrap());
    let changed = &c.forked_from.as_ref().unwrap().changed;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].starts_with("loss.label_smoothing: "), "{changed:?}");
    assert_ne!(c.last, b.last, "the changed loss trained epochs 2–3 differently");
    // `longtail diff`: the fork with the parent's config is the parent as far as the parent
    // goes; the changed fork differs in that key and from epoch 2 on.
    let d = diff(parent.path(), &same).unwrap();
    assert!(d.same() && d.best_skipped, "{}", d.render());
    assert!(d.render().contains("the same as far as both go"), "{}", d.render());
    let d = diff(&same, &forks.path().join("smoothed")).unwrap();
    assert!(!d.same());
    assert_eq!(d.config, [("loss.label_smoothing".to_string(), "0.0".to_string(), "0.1".to_string())]);
    let m = d.metrics.as_ref().unwrap();
    assert_eq!((m.common.len(), m.differing[0]), (3, 2), "{}", d.render());
    assert!(d.weights.iter().all(|w| !w.same()), "{}", d.render());

    let mut other_data = tiny(3);
    other_data.data.rho = 2.0;
    let err = train(&other_data, &fork_opts(&forks.path().join("rho"))).err().unwrap().to_string();
    assert!(err.contains("data.rho") && err.contains("[loss]"), "{err}");
    assert!(!forks.path().join("rho").exists(), "a refused fork leaves no directory");
    let err = train(&tiny(3), &fork_opts(&same)).err().unwrap().to_string();
    assert!(err.contains("not empty"), "{err}");
    let err = train(&tiny(1), &fork_opts(&forks.path().join("short"))).err().unwrap().to_string();
    assert!(err.contains("nothing left to train"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let opts =
        TrainOptions { fork_from: Some(empty.path().to_path_buf()), ..options(&forks.path().join("x"), false, None) };
    let err = train(&tiny(3), &opts).err().unwrap().to_string();
    assert!(err.contains(run::STATE_FILE), "{err}");
    let opts = TrainOptions { fork_from: Some(parent.path().to_path_buf()), ..options(&same, true, None) };
    assert!(train(&tiny(3), &opts).err().unwrap().to_string().contains("--resume alone"));

    assert_eq!(std::fs::read_to_string(parent.path().join(run::STATE_FILE)).unwrap(), parent_state);
    assert_eq!(RunDir::new(parent.path()).read_metrics().unwrap().len(), 1, "the parent is untouched");
}

#[test]
fn divergence_stops_cleanly_and_keeps_the_last_good_checkpoint() {
    let _rng = shared();
    // Epoch 2 runs at lr = 0.1 · 1e30: the weights blow up within a step or two.
    let cfg = config(&[
        "data.rho=1",
        "data.max_per_class=16",
        "model.arch=\"resnet20\"",
        "model.widths=[4, 8, 8]",
        "train.batch_size=32",
        "train.epochs=3",
        "train.warmup_epochs=0",
        "train.milestones=[1]",
        "train.gamma=1e30",
        "train.threads=1",
        "eval.max_test_images=100",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let err = train(&cfg, &options(dir.path(), false, None)).err().expect("must stop");
    let msg = err.to_string();
    assert!(msg.contains("diverged at epoch 2, step"), "{msg}");
    assert!(msg.contains("ckpt-0001.ot") && msg.contains("intact"), "{msg}");
    assert!(msg.contains("(ce)") || msg.contains("gradient of"), "names the term or parameter: {msg}");
    let saved = std::fs::read_to_string(dir.path().join(run::FAILURE_FILE)).unwrap();
    assert_eq!(saved.trim(), msg);
    let st: TrainState = store::read_json(&dir.path().join(run::STATE_FILE)).unwrap();
    assert_eq!(st.epochs_done, 1, "no epoch after the divergence was recorded");
    assert!(!dir.path().join(run::SUMMARY_FILE).exists());
    for (name, t) in weights(dir.path()) {
        assert!(t.isfinite().all().int64_value(&[]) == 1, "{name} in the kept checkpoint is not finite");
    }
}

/// `eval --precise-bn` on a finished run: it writes its own result, averages the batches asked
/// for, leaves the checkpoint byte for byte as it was, and refuses zero batches.
#[test]
fn precise_bn_eval_writes_its_result_and_leaves_the_checkpoint() {
    let _rng = shared();
    use longtail::run::PreciseBnReport;
    let dir = tempfile::tempdir().unwrap();
    finished(train(&tiny(1), &options(dir.path(), false, None)).unwrap());
    let st: TrainState = store::read_json(&dir.path().join(run::STATE_FILE)).unwrap();
    let ckpt = dir.path().join(&st.checkpoint);
    let before = std::fs::read(&ckpt).unwrap();
    let eval = |batches: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_longtail"))
            .args(["eval", dir.path().to_str().unwrap(), "--precise-bn", batches, "--data"])
            .arg(common::fixture_cifar10())
            .output()
            .unwrap()
    };
    let out = eval("3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("last, precise BN"), "{stdout}");
    let report: PreciseBnReport = store::read_json(&dir.path().join(run::PRECISE_BN_FILE)).unwrap();
    // 160 images in batches of 32: 3 full batches, ResNet-20's 19 BatchNorms.
    assert_eq!((report.batches, report.images, report.layers, report.epoch), (3, 96, 19, 1));
    // The batches are a fixed function of the run: a second call recomputes the same statistics
    // and so the same accuracy, to the last digit.
    assert!(eval("3").status.success());
    let again: PreciseBnReport = store::read_json(&dir.path().join(run::PRECISE_BN_FILE)).unwrap();
    assert_eq!(again.full_depth, report.full_depth);
    assert_eq!(std::fs::read(&ckpt).unwrap(), before, "the checkpoint must not change");
    let out = eval("0");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--precise-bn 0"));
}

/// `eval --average-from`: the mean of the weights a run kept (`--keep-weights-from`), with BN
/// statistics recomputed for it, goes to its own file; the checkpoint is left as it was, and
/// epochs that were not kept, or other weights than the last, are refused by name.
#[test]
fn weight_average_eval_writes_its_result() {
    let _rng = shared();
    use longtail::run::PreciseBnReport;
    let dir = tempfile::tempdir().unwrap();
    let keep = TrainOptions { keep_weights_from: Some(2), ..options(dir.path(), false, None) };
    finished(train(&tiny(3), &keep).unwrap());
    let st: TrainState = store::read_json(&dir.path().join(run::STATE_FILE)).unwrap();
    let ckpt = dir.path().join(&st.checkpoint);
    let before = std::fs::read(&ckpt).unwrap();
    let eval = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_longtail"))
            .args(["eval", dir.path().to_str().unwrap(), "--data"])
            .arg(common::fixture_cifar10())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = eval(&["--average-from", "2", "--precise-bn", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Weights of epochs 2–3 averaged (2 files)"), "{stdout}");
    assert!(stdout.contains("epochs 2–3 averaged, precise BN"), "{stdout}");
    let report: PreciseBnReport = store::read_json(&dir.path().join(run::WEIGHT_AVERAGE_FILE)).unwrap();
    assert_eq!((report.averaged_from, report.epoch, report.batches, report.layers), (Some(2), 3, 3, 19));
    assert!(!dir.path().join(run::PRECISE_BN_FILE).exists(), "the averaged weights have their own file");
    assert_eq!(std::fs::read(&ckpt).unwrap(), before, "the checkpoint must not change");
    let refused = |extra: &[&str], says: &str| {
        let out = eval(extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
    };
    refused(&["--average-from", "1"], "epoch-0001.ot is missing");
    refused(&["--average-from", "2", "--weights", "best"], "--weights best does not apply");
    refused(&["--average-from", "4"], "from 1 to the run's last (3)");
}

/// `select`: every kept epoch is scored on validation images outside the long-tailed subset, one
/// is chosen, and its test accuracy recomputed from its weights equals what training logged for
/// that epoch; `publish` attaches the choice. A run that kept no weights is told how to keep them.
#[test]
fn select_chooses_a_kept_epoch_on_left_out_images() {
    let _rng = shared();
    use longtail::run::ValidationSelection;
    // ρ = 100 (the 16-per-class cap keeps it tiny) leaves images out of the subset to validate on.
    let cfg = tiny_with(3, &["data.rho=100"]);
    let dir = tempfile::tempdir().unwrap();
    let keep = TrainOptions { keep_weights_from: Some(2), ..options(dir.path(), false, None) };
    finished(train(&cfg, &keep).unwrap());
    let select = |run: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_longtail"))
            .args(["select", run.to_str().unwrap(), "--per-class", "20", "--data"])
            .arg(common::fixture_cifar10())
            .output()
            .unwrap()
    };
    let out = select(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chosen: ValidationSelection = store::read_json(&dir.path().join(run::SELECTION_FILE)).unwrap();
    // ρ = 100 keeps all of class 0, so the validation set has none of it.
    assert_eq!(chosen.validation.per_class, [vec![0], vec![20; 9]].concat());
    assert_eq!(chosen.candidates.iter().map(|c| c.epoch).collect::<Vec<_>>(), vec![2, 3]);
    let logged = RunDir::new(dir.path()).read_metrics().unwrap();
    let logged_test = logged[chosen.selected.epoch - 1].test.as_ref().unwrap().overall;
    assert_eq!(chosen.selected.overall, logged_test, "the chosen weights give the test accuracy logged for them");
    assert_eq!(chosen.candidates.iter().find(|c| c.epoch == chosen.selected.epoch).unwrap().test, Some(logged_test));
    assert!(stdout.contains(&format!("Selected epoch {}", chosen.selected.epoch)), "{stdout}");
    assert!(dir.path().join(longtail::eval::select::SELECTION_PLOT).exists());

    let results = tempfile::tempdir().unwrap();
    longtail::report::publish::publish(dir.path(), Some("r"), results.path(), false).unwrap();
    let published: longtail::run::Summary = store::read_json(&results.path().join("r.json")).unwrap();
    assert_eq!(published.selected_on_validation, Some(chosen));

    let bare = tempfile::tempdir().unwrap();
    for file in [run::CONFIG_FILE, run::STATE_FILE, run::METRICS_FILE] {
        std::fs::copy(dir.path().join(file), bare.path().join(file)).unwrap();
    }
    let out = select(bare.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--keep-weights-from"), "{err}");
}
