//! `rebalance` end to end on a tiny trained run (ResLT grouped head with early exits, ρ = 10, on
//! the synthetic fixture): every method's neutral setting reproduces the weights as trained, the
//! weights as trained score what `eval` scores, the choice is the best on validation, and the
//! result reaches the report, `compare` and the published result.
mod common;

use longtail::eval::saved_run::{evaluate_run, EvalRequest};
use longtail::rebalance::{rebalance_run, Method, RebalanceRequest};
use longtail::run::{self, RunDir, StageTwoReport, Weights};
use longtail::train::trainer::{train, Outcome};

fn trained_run() -> tempfile::TempDir {
    let cfg = common::tiny_config(
        2,
        &[
            "data.rho=10",
            "model.widths=[4, 8, 12]",
            "model.head=\"grouped\"",
            "loss.kind=\"reslt\"",
            "model.exits.kind=\"plain\"",
            "model.exits.classifier=\"linear\"",
            "loss.exit_loss=\"ce\"",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let opts = common::train_options(dir.path(), Some(common::fixture_cifar10()));
    assert!(matches!(train(&cfg, &opts).unwrap(), Outcome::Finished(_)));
    dir
}

fn request(dir: &std::path::Path) -> RebalanceRequest {
    RebalanceRequest {
        run_dir: dir.to_path_buf(),
        data: Some(common::fixture_cifar10()),
        per_class: 20,
        methods: Method::ALL.to_vec(),
    }
}

/// `eval` of the run's last weights on the fixture, as a user would run it.
fn eval_last(dir: &std::path::Path) -> longtail::eval::saved_run::EvalOutcome {
    evaluate_run(&EvalRequest {
        run_dir: dir.to_path_buf(),
        data: Some(common::fixture_cifar10()),
        weights: Weights::Last,
        thresholds: vec![],
        timing: false,
        precise_bn: None,
        average_from: None,
    })
    .unwrap()
}

#[test]
fn rebalance_reduces_to_the_weights_as_trained_chooses_on_validation_and_is_published() {
    let dir = trained_run();
    let report = rebalance_run(&request(dir.path())).unwrap();
    assert_eq!(report.weights, "last (epoch 2)");
    assert_eq!(report.validation.per_class[0], 0, "ρ = 10 uses every image of class 0");
    assert_eq!(report.validation.images, 9 * 20);

    // τ = 0 and γ = 0 are the weights as trained: the same validation accuracy, to the bit.
    for name in ["logit-adjust", "tau-norm"] {
        let m = report.methods.iter().find(|m| m.method == name).unwrap();
        assert_eq!(m.candidates[0].setting, 0.0);
        assert_eq!(m.candidates[0].validation, report.as_trained_validation, "{name} at 0");
    }
    // Every method's chosen setting is its best on validation; cRT and LWS keep one per epoch.
    for m in &report.methods {
        let best = m.candidates.iter().map(|c| c.validation).fold(f64::MIN, f64::max);
        assert_eq!(m.chosen.as_ref().unwrap().validation, best, "{}", m.method);
        assert!(m.test.as_ref().unwrap().early_exit.is_some(), "{}: early exit is scored after it", m.method);
    }
    let crt = report.methods.iter().find(|m| m.method == "crt").unwrap();
    assert_eq!(crt.candidates.len(), longtail::rebalance::retrain::EPOCHS);
    let mislas = report.methods.iter().find(|m| m.method == "mislas").unwrap();
    assert_eq!(mislas.candidates.len(), 3 * longtail::rebalance::retrain::EPOCHS, "three ε_head × the epochs");
    assert_eq!(mislas.candidates[10].label, "ε_head = 0.2, epochs = 1");

    // As trained, scored through the last layers on pooled features, is what `eval` scores.
    let eval = eval_last(dir.path());
    assert_eq!(report.as_trained.full_depth.overall, eval.scores[0].1.overall);
    let cal = &report.as_trained.calibration;
    assert_eq!(cal.bins.iter().map(|b| b.count).sum::<usize>(), 100, "eval.max_test_images = 100");
    assert!((cal.accuracy - report.as_trained.full_depth.overall).abs() < 1e-9);

    // The file is the report; `publish` attaches it, the run report and `compare` show it.
    let rd = RunDir::new(dir.path());
    let written: StageTwoReport = longtail::store::read_json(&rd.file(run::STAGE_TWO_FILE)).unwrap();
    assert_eq!(written, report);
    let results = tempfile::tempdir().unwrap();
    let published = longtail::report::publish::publish(dir.path(), Some("toy"), results.path(), false).unwrap();
    let summary = longtail::run::Summary::read(&published.path).unwrap();
    assert_eq!(summary.stage_two.as_ref(), Some(&report));
    let md = std::fs::read_to_string(longtail::report::run_report::write(dir.path()).unwrap()).unwrap();
    assert!(md.contains("## Second stage and calibration") && md.contains("| logit-adjust"), "{md}");
    let png = results.path().join("c.png");
    let table = longtail::report::compare::compare(&[published.path.as_path()], None, &png).unwrap();
    assert!(table.contains("ECE as trained") && table.contains("second stage chosen on validation"), "{table}");
    let all = longtail::report::stage_two::render(results.path()).unwrap();
    assert!(all.contains("1 of 1 published results") && all.contains("`toy`"), "{all}");
}

#[test]
fn a_stage_two_file_about_other_weights_is_refused_by_publish() {
    let dir = trained_run();
    let mut report =
        rebalance_run(&RebalanceRequest { methods: vec![Method::LogitAdjust], ..request(dir.path()) }).unwrap();
    report.epoch = 1;
    let rd = RunDir::new(dir.path());
    longtail::store::write_json(&rd.file(run::STAGE_TWO_FILE), &report).unwrap();
    let results = tempfile::tempdir().unwrap();
    let err = longtail::report::publish::publish(dir.path(), None, results.path(), false).unwrap_err();
    assert!(format!("{err:#}").contains("rebalance"), "{err:#}");
    assert_eq!(std::fs::read_dir(results.path()).unwrap().count(), 0, "nothing was published");
}

#[test]
fn a_request_without_images_or_methods_is_refused_before_any_file_is_read() {
    let missing = std::path::Path::new("does/not/exist");
    let err = rebalance_run(&RebalanceRequest { per_class: 0, ..request(missing) }).unwrap_err();
    assert!(err.to_string().contains("--per-class 0"), "{err}");
    let err = rebalance_run(&RebalanceRequest { methods: vec![], ..request(missing) }).unwrap_err();
    assert!(err.to_string().contains("logit-adjust, tau-norm, crt, lws, mislas"), "{err}");
}

/// A zoo file holds every variable under its PyTorch name, contiguous (no channels-last
/// strides), and `eval` on it scores what `eval` scores on the run.
#[test]
fn a_zoo_file_reproduces_the_runs_numbers() {
    let dir = trained_run();
    let zoo = tempfile::tempdir().unwrap();
    let files = longtail::eval::zoo::export(dir.path(), zoo.path(), false).unwrap();
    assert_eq!(files, vec![zoo.path().join(longtail::eval::zoo::LAST_FILE)], "no select ran: the last epoch only");
    assert!(zoo.path().join("config.toml").is_file());
    let named = tch::Tensor::read_safetensors(&files[0]).unwrap();
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "conv1.weight",
        "bn1.running_var",
        "layer3.2.bn2.bias",
        "reslt.conv.weight",
        "reslt.fc.bias",
        "exit1.fc.weight",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(named.iter().all(|(_, t)| t.is_contiguous()));
    let from_run = eval_last(dir.path());
    let from_zoo = longtail::eval::zoo::evaluate(&files[0], Some(&common::fixture_cifar10())).unwrap();
    let overall =
        |o: &longtail::eval::saved_run::EvalOutcome| o.scores.iter().map(|(_, s)| s.overall).collect::<Vec<_>>();
    assert_eq!(overall(&from_zoo), overall(&from_run));
    assert_eq!(from_zoo.early_exit, from_run.early_exit);
    // A zoo file without its config beside it is refused by name.
    let alone = tempfile::tempdir().unwrap();
    let moved = alone.path().join("w.safetensors");
    std::fs::copy(&files[0], &moved).unwrap();
    let err = longtail::eval::zoo::evaluate(&moved, None).unwrap_err();
    assert!(err.to_string().contains("config.toml"), "{err}");
}

/// The committed second-stage table is what the command renders from the committed results
/// (tests run in the crate's root, where the command is documented to run).
#[test]
fn the_committed_stage_two_table_is_rendered_from_results() {
    let results = std::path::Path::new("results");
    let committed = std::fs::read_to_string(results.join(longtail::report::stage_two::TABLE_MD)).unwrap();
    let rendered = longtail::report::stage_two::render(results).unwrap();
    assert_eq!(rendered, committed, "run `longtail reproduce stage-two --results results` and commit the table");
}
