//! Reports render every plot from a small synthetic run directory; the PNGs decode at the
//! expected sizes and the tables carry the numbers of the run's own summary.
use std::path::Path;

use longtail::report::{compare, run_report};
use longtail::run::{self, EpochRecord, EpochScore, GroupsInfo, RunDir, Summary};
use longtail::score::early_exit::EarlyExit;
use longtail::score::metrics::{Accuracy, GroupExitFractions, GroupRule};
use longtail::store;

fn acc(overall: f64, per_class: Vec<f64>) -> Accuracy {
    let mean = |r: std::ops::Range<usize>| Some(per_class[r.clone()].iter().sum::<f64>() / r.len() as f64);
    Accuracy { overall, many: mean(0..3), medium: mean(3..6), few: mean(6..10), per_class: per_class.clone() }
}

fn exit_at(threshold: f64, mean_macs: f64, overall: f64) -> EarlyExit {
    EarlyExit {
        threshold,
        overall,
        many: Some(overall + 10.0),
        medium: Some(overall),
        few: Some(overall - 10.0),
        mean_macs,
        full_macs: 68_862_528,
        saving: 1.0 - mean_macs / 68_862_528.0,
        exit_fractions: vec![0.5, 0.3, 0.2],
        exit_fractions_by_group: vec![vec![0.7, 0.2, 0.1], vec![0.4, 0.4, 0.2], vec![0.1, 0.3, 0.6]],
    }
}

fn synthetic_run(dir: &Path, name: &str, alpha: f64, branches: bool) -> Summary {
    let counts = vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
    let per_class: Vec<f64> = (0..10).map(|c| 95.0 - 6.5 * c as f64 + alpha).collect();
    let last_acc = acc(per_class.iter().sum::<f64>() / 10.0, per_class.clone());
    let d = RunDir::new(dir);
    for e in 1..=20 {
        let test = (e % 5 == 0).then(|| acc(40.0 + e as f64, (0..10).map(|c| 50.0 + e as f64 - c as f64).collect()));
        d.append_metrics(&EpochRecord {
            epoch: e,
            lr: if e < 15 { 0.1 } else { 0.001 },
            train_loss: 2.0 / e as f64,
            train_acc: 50.0 + e as f64,
            images_per_second: 400.0,
            seconds: 30.0,
            data_wait_seconds: 0.01,
            train_exit_fractions: branches.then(|| {
                let first = 0.2 + 0.02 * e as f64;
                vec![first, 0.1, 0.9 - first]
            }),
            train_exit_fractions_by_group: branches.then(|| GroupExitFractions {
                many: Some(vec![0.8, 0.1, 0.1]),
                medium: Some(vec![0.5, 0.2, 0.3]),
                few: Some(vec![0.1, 0.1, 0.8]),
            }),
            train_exit_counts: branches.then(|| {
                vec![
                    vec![3000, 1500, 800, 400, 200, 100, 40, 10, 0, 0],
                    vec![1000; 10],
                    (0..10).map(|c| 100 * c).collect(),
                ]
            }),
            test,
            test_branches: None,
        })
        .unwrap();
    }
    std::fs::write(dir.join(run::CONFIG_FILE), format!("[loss]\nalpha = {alpha}\n")).unwrap();
    let confusion: Vec<Vec<u32>> = (0..10)
        .map(|r| (0..10).map(|c| if r == c { 700 + 10 * r as u32 } else { 30 - 3 * r as u32 / 2 }).collect())
        .collect();
    let summary = Summary {
        schema_version: run::SUMMARY_SCHEMA,
        name: name.into(),
        config: Some("configs/x.toml".into()),
        command: "longtail train -c configs/x.toml".into(),
        commit: "abc123".into(),
        seed: 0,
        dataset: longtail::data::Dataset::Cifar(longtail::data::cifar::Cifar::Cifar10),
        rho: 100.0,
        subset_seed: 0,
        epochs: 20,
        best: EpochScore::new(15, &acc(61.234, per_class.clone())),
        last: EpochScore::new(20, &last_acc),
        groups: GroupsInfo::new(
            "class-index ranges".into(),
            counts,
            &GroupRule::Index { bounds: [3, 6] }.assign(&[0; 10]),
        ),
        last_per_class: per_class.clone(),
        last_confusion: confusion,
        last_branches: branches
            .then(|| vec![last_acc.clone(), acc(50.0, per_class.clone()), acc(40.0, per_class.clone())]),
        last_exits_alone: branches.then(|| vec![acc(33.3, vec![11.1; 10]), acc(44.4, per_class.clone())]),
        early_exit: branches.then(|| exit_at(0.9, 30.0e6, 70.0)),
        early_exit_sweep: if branches {
            vec![exit_at(0.5, 28.0e6, 66.0), exit_at(0.7, 35.0e6, 69.0), exit_at(0.9, 45.0e6, 71.0)]
        } else {
            Vec::new()
        },
        wall_seconds: 3725.0,
        precision: Default::default(),
        device: "Cpu".into(),
        machine: "test machine".into(),
        engine: "tch 0.24.0".into(),
        started_at: "2026-11-27T00:00:00Z".into(),
        resumes: Vec::new(),
        forked_from: None,
        early_exit_timing: None,
        precise_bn: None,
        weight_average: None,
        selected_on_validation: None,
        stage_two: None,
        finished_at: "2026-11-27T01:00:00Z".into(),
    };
    store::write_json(&dir.join(run::SUMMARY_FILE), &summary).unwrap();
    summary
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    (img.width(), img.height())
}

fn provenance(command: &str, commit: &str) -> longtail::store::Provenance {
    longtail::store::Provenance {
        measured_at: "2026-11-28T15:00:00Z".into(),
        command: command.into(),
        commit: commit.into(),
        device: "Cpu".into(),
    }
}

/// `eval --precise-bn`'s report of the last weights (epoch 20) of a synthetic run.
fn precise_report(overall: f64, early_exit: Option<EarlyExit>) -> longtail::run::PreciseBnReport {
    longtail::run::PreciseBnReport {
        weights: run::Weights::Last,
        epoch: 20,
        averaged_from: None,
        layers: 33,
        batches: 200,
        images: 25600,
        full_depth: acc(overall, vec![overall; 10]),
        exits_alone: Vec::new(),
        early_exit,
        provenance: provenance("longtail eval run --precise-bn", "def456"),
    }
}

#[test]
fn report_renders_every_plot_and_the_summary_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let s = synthetic_run(dir.path(), "toy", 0.95, true);
    let md_path = run_report::write(dir.path()).unwrap();
    assert_eq!(png_size(&dir.path().join(run_report::CURVES_PNG)), (1000, 760));
    assert_eq!(png_size(&dir.path().join(run_report::PER_CLASS_PNG)), (900, 560));
    assert_eq!(png_size(&dir.path().join(run_report::CONFUSION_PNG)), (680, 640));
    assert_eq!(png_size(&dir.path().join(run_report::BRANCHES_PNG)), (1260, 520));
    let md = std::fs::read_to_string(md_path).unwrap();
    for number in
        [format!("{:.2}", s.best.overall), format!("{:.2}", s.last.overall), format!("{:.2}", s.last.few.unwrap())]
    {
        assert!(md.contains(&number), "report.md lacks {number}");
    }
    assert!(md.contains(&format!("{:.1}", s.last_per_class[9])));
    assert!(md.contains("abc123") && md.contains("1h 02m 05s"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(png_size(&dir.path().join(run_report::EXITS_PNG)).1, 520);
    assert_eq!(png_size(&dir.path().join(run_report::EXIT_SWEEP_PNG)), (900, 560));
    assert_eq!(png_size(&dir.path().join(run_report::TRAIN_EXITS_PNG)), (900, 460));
    assert!(md.contains("train_exits.png") && md.contains("the final head learns only from the samples"));
    assert!(md.contains("| 0.9 | 70.00 |"), "early-exit row from the summary");
    assert!(md.contains("56.4 %"), "MACs saving of τ=0.9 (1 − 30/68.86)");
    // Each exit alone (accuracy table and per-class column), and where each class's training
    // samples left in the last epoch: class 9 = 0, 1000 and 900 samples → 0 / 53 / 47 %.
    assert!(md.contains("last, exit 1 alone") && md.contains("33.30"), "{md}");
    assert!(md.contains("train samples leaving at exit 1 / 2 / final"), "{md}");
    assert!(md.contains("| 0 / 53 / 47 | 11.1 |"), "{md}");
    assert_eq!(html.matches("data:image/png;base64,").count(), 7, "every plot is embedded");
    assert!(html.contains(&format!("{:.2}", s.best.overall)));
}

#[test]
fn plain_run_has_no_branch_plot_and_unfinished_runs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_run(dir.path(), "plain", 0.0, false);
    run_report::write(dir.path()).unwrap();
    assert!(!dir.path().join(run_report::BRANCHES_PNG).exists());
    assert!(!dir.path().join(run_report::TRAIN_EXITS_PNG).exists());
    let empty = tempfile::tempdir().unwrap();
    let err = run_report::write(empty.path()).unwrap_err();
    assert!(err.to_string().contains("summary.json"), "{err}");
}

#[test]
fn compare_tabulates_runs_by_a_config_key() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = synthetic_run(a.path(), "alpha-low", 0.9, false);
    let sb = synthetic_run(b.path(), "alpha-high", 0.99, false);
    let png = a.path().join("cmp.png");
    let md = compare::compare(&[a.path(), b.path()], Some("loss.alpha"), &png).unwrap();
    assert!(md.contains("| loss.alpha |") || md.contains("loss.alpha"));
    assert!(md.contains("0.9 ") || md.contains("| 0.9 |"), "{md}");
    assert!(md.contains(&format!("{:.2}", sa.last.overall)) && md.contains(&format!("{:.2}", sb.last.overall)));
    let (w, h) = png_size(&png);
    assert!(w >= 900 && h == 520);
    let err = compare::compare(&[a.path()], Some("loss.nope"), &png).unwrap_err();
    assert!(err.to_string().contains("loss.nope"));
    // A key the saved config does not spell out (a run older than the key) shows its default.
    let md = compare::compare(&[a.path(), b.path()], Some("loss.exit_decision"), &png).unwrap();
    assert!(md.contains("| confidence |"), "{md}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn compare_averages_the_seeds_of_one_setting() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    synthetic_run(dirs[0].path(), "a-seed0", 0.9, false); // last overall 65.75 + 0.9 = 66.65
    synthetic_run(dirs[1].path(), "b-seed0", 0.99, false);
    // A second seed of setting a: numbers 2 points higher, same config value, seed 1.
    let mut s = synthetic_run(dirs[2].path(), "a-seed1", 2.9, false); // 68.65
    std::fs::write(dirs[2].path().join(run::CONFIG_FILE), "[loss]\nalpha = 0.9\n").unwrap();
    s.seed = 1;
    store::write_json(&dirs[2].path().join(run::SUMMARY_FILE), &s).unwrap();
    let png = dirs[0].path().join("cmp.png");
    let paths: Vec<&Path> = dirs.iter().map(|d| d.path()).collect();
    let md = compare::compare(&paths, Some("loss.alpha"), &png).unwrap();
    // (66.65 + 68.65) / 2 = 67.65; sample std √((1² + 1²) / 1) = 1.41.
    assert!(md.contains("| 0.9 | 2 | 0, 1 | 61.23 ± 0.00 | 67.65 ± 1.41 |"), "{md}");
    assert!(md.contains("| 0.99 | 1 | 0 |"), "{md}");
    assert!(md.contains("runs with the same loss.alpha"));
    // Without --by the groups are the seeds of each run (names `<run>-seed<N>`); the same seed
    // twice is flagged.
    let md = compare::compare(&paths, None, &png).unwrap();
    assert!(md.contains("| a | 2 | 0, 1 | 61.23 ± 0.00 | 67.65 ± 1.41 |"), "{md}");
    assert!(md.contains("| b | 1 | 0 |"), "{md}");
    let md = compare::compare(&[paths[0], paths[0]], None, &png).unwrap();
    assert!(md.contains("| a | 2 | 0, 0 (repeated seed) |"), "{md}");
    // A folder of runs is every finished run in it.
    let folder = tempfile::tempdir().unwrap();
    for (i, d) in dirs.iter().enumerate() {
        copy_dir(d.path(), &folder.path().join(format!("r{i}")));
    }
    std::fs::create_dir(folder.path().join("unfinished")).unwrap();
    std::fs::write(folder.path().join("unfinished").join(run::CONFIG_FILE), "").unwrap();
    let md = compare::compare(&[folder.path()], None, &png).unwrap();
    assert!(md.contains("| a | 2 | 0, 1 | 61.23 ± 0.00 | 67.65 ± 1.41 |"), "{md}");
}

#[test]
fn compare_reads_published_results_with_precise_bn_and_early_exit() {
    use longtail::run::PreciseBnReport;
    let runs = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    // Publish three runs of one setting the way `publish` lays them out: results/<name>.json,
    // and the config beside it in results/<name>/. Seeds 0 and 1 have precise BN; seed 2 not.
    let mut paths = Vec::new();
    for (seed, precise) in [(0u64, Some(70.0)), (1, Some(72.0)), (2, None)] {
        let average = (seed == 1).then_some(73.0);
        let name = format!("e-s{seed}");
        std::fs::create_dir_all(runs.path().join(&name)).unwrap();
        let mut s = synthetic_run(&runs.path().join(&name), &name, 0.9, true);
        s.seed = seed;
        s.early_exit = Some(exit_at(0.9, 30.0e6, 70.0 + 2.0 * seed as f64));
        s.precise_bn = precise.map(|overall| precise_report(overall, None));
        s.weight_average = average.map(|overall| PreciseBnReport {
            averaged_from: Some(16),
            full_depth: acc(overall, vec![overall; 10]),
            ..s.precise_bn.clone().unwrap()
        });
        let folder = results.path().join(&name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(runs.path().join(&name).join(run::CONFIG_FILE), folder.join(run::CONFIG_FILE)).unwrap();
        let file = results.path().join(format!("{name}.json"));
        store::write_json(&file, &s).unwrap();
        paths.push(file);
    }
    let png = results.path().join("cmp.png");
    let two: Vec<&Path> = paths[..2].iter().map(|p| p.as_path()).collect();
    let md = compare::compare(&two, Some("loss.alpha"), &png).unwrap();
    assert!(md.contains("| last, precise BN | last epochs averaged | early exit | wall (min) |"), "{md}");
    // Per run: last 66.65, precise BN 70.00 / 72.00, average — / 73.00, early exit 70.00 / 72.00.
    assert!(md.contains("| e-s0 | 0.9 | 0 | 61.23 @15 | 66.65 |"), "{md}");
    assert!(md.contains("| 70.00 | — | 70.00 | 62.1 |"), "{md}");
    assert!(md.contains("| 72.00 | 73.00 | 72.00 | 62.1 |"), "{md}");
    // Means: (70 + 72) / 2 = 71, sample std √2 = 1.41; none for the average seed 0 lacks.
    assert!(md.contains("| 71.00 ± 1.41 | — | 71.00 ± 1.41 |"), "{md}");
    // Without the runs that have them, the columns are gone.
    let md = compare::compare(&[paths[2].as_path()], None, &png).unwrap();
    assert!(md.contains("| last few | early exit | wall (min) |"), "{md}");
    // A run without precise BN shows "—", and its group has no precise-BN mean.
    let all: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let md = compare::compare(&all, Some("loss.alpha"), &png).unwrap();
    assert!(md.contains("| — | — | 74.00 | 62.1 |"), "{md}");
    assert!(md.contains("| — | — | 72.00 ± 2.00 |"), "{md}");
    // A file that is no result is named in the error.
    let bad = results.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let err = compare::compare(&[bad.as_path()], None, &png).unwrap_err();
    assert!(format!("{err:#}").contains("bad.json is neither a run directory nor a published result"), "{err:#}");
}

/// `longtail publish <run> --results <results> [extra…]`, the real binary.
fn publish(run: &Path, results: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_longtail"))
        .arg("publish")
        .arg(run)
        .arg("--results")
        .arg(results)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn early_exit_timing_is_rendered_and_published_with_the_result() {
    use longtail::run::TimingReport;
    use longtail::score::early_exit::ExitTiming;
    let dir = tempfile::tempdir().unwrap();
    synthetic_run(dir.path(), "toy-exits", 0.95, true);
    let row = |batch, images, full, early| ExitTiming {
        batch,
        images,
        tau: 0.9,
        repetitions: 3,
        full_depth_seconds: full,
        early_exit_seconds: early,
        early_exit_accuracy: 70.0,
    };
    let timing = TimingReport {
        weights: run::Weights::Last,
        epoch: Some(20),
        provenance: provenance("longtail eval run --timing", "abc123"),
        machine: "test machine".into(),
        engine: "tch 0.24.0".into(),
        rows: vec![row(1, 1000, 3.0, 1.5), row(256, 10000, 9.0, 6.0)],
    };
    store::write_json(&dir.path().join(run::TIMING_FILE), &timing).unwrap();
    let md = std::fs::read_to_string(run_report::write(dir.path()).unwrap()).unwrap();
    assert!(md.contains("Early exits: wall clock"), "{md}");
    assert!(md.contains("| 1 | 1000 | 3.00 | 1.50 | 2.00× | 70.00 |"), "{md}");
    assert!(md.contains("| 256 | 10000 | 9.00 | 6.00 | 1.50× | 70.00 |"), "{md}");
    assert!(md.contains("medians of 3 interleaved passes"));

    let results = dir.path().join("results");
    let out = publish(dir.path(), &results, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published: Summary = store::read_json(&results.join("toy-exits.json")).unwrap();
    let t = published.early_exit_timing.expect("the timing travels with the result");
    assert_eq!(t.rows.len(), 2);
    assert_eq!((t.rows[0].batch, t.rows[0].early_exit_seconds), (1, 1.5));
    // The run's own summary is left as the trainer wrote it.
    let own: Summary = store::read_json(&dir.path().join(run::SUMMARY_FILE)).unwrap();
    assert!(own.early_exit_timing.is_none());

    // A timing of other weights (the run was resumed after it), or at another τ than the
    // result's early exit, is refused and the published result is left as it was.
    let refused = |bad: &TimingReport, says: &str| {
        store::write_json(&dir.path().join(run::TIMING_FILE), bad).unwrap();
        let out = publish(dir.path(), &results, &["--force"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
        let kept: Summary = store::read_json(&results.join("toy-exits.json")).unwrap();
        assert_eq!(kept.early_exit_timing.map(|t| t.provenance.commit), Some("abc123".to_string()));
    };
    refused(&TimingReport { epoch: Some(19), ..timing.clone() }, "epoch 19");
    let mut other_tau = timing.clone();
    other_tau.rows[1].tau = 0.5;
    refused(&other_tau, "τ = 0.5");
    // A file from before the epoch was recorded is still attached, with a note.
    store::write_json(&dir.path().join(run::TIMING_FILE), &TimingReport { epoch: None, ..timing }).unwrap();
    let out = publish(dir.path(), &results, &["--force"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("attached unchecked"));
}

#[test]
fn precise_bn_is_rendered_and_published_with_the_result() {
    use longtail::run::PreciseBnReport;
    let dir = tempfile::tempdir().unwrap();
    let summary = synthetic_run(dir.path(), "toy-precise", 0.95, true);
    let report = precise_report(66.6, summary.early_exit.clone());
    store::write_json(&dir.path().join(run::PRECISE_BN_FILE), &report).unwrap();
    let md = std::fs::read_to_string(run_report::write(dir.path()).unwrap()).unwrap();
    assert!(md.contains("| last, precise BN | 20 | 66.60 |"), "{md}");
    assert!(md.contains("averaged over 200 training batches (25600 images)"), "{md}");
    assert!(md.contains("early exit at τ = 0.9 answers 70.00 %"), "{md}");

    let results = dir.path().join("results");
    let out = publish(dir.path(), &results, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published: Summary = store::read_json(&results.join("toy-precise.json")).unwrap();
    let p = published.precise_bn.expect("precise BN travels with the result");
    assert_eq!((p.batches, p.full_depth.overall), (200, 66.6));
    // The trainer's own numbers stay as they were.
    assert_eq!(published.last, summary.last);

    // The weight average has a row, a paragraph and a field of its own.
    let average = PreciseBnReport {
        averaged_from: Some(16),
        full_depth: acc(67.7, vec![67.7; 10]),
        early_exit: Some(exit_at(0.9, 30.0e6, 71.5)),
        ..report.clone()
    };
    store::write_json(&dir.path().join(run::WEIGHT_AVERAGE_FILE), &average).unwrap();
    let md = std::fs::read_to_string(run_report::write(dir.path()).unwrap()).unwrap();
    assert!(md.contains("| epochs 16–20 averaged, precise BN | 20 | 67.70 |"), "{md}");
    assert!(md.contains("the mean of the weights of epochs 16–20"), "{md}");
    assert!(md.contains("early exit at τ = 0.9 answers 71.50 %"), "{md}");
    let out = publish(dir.path(), &results, &["--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published: Summary = store::read_json(&results.join("toy-precise.json")).unwrap();
    assert_eq!(published.weight_average.map(|a| (a.averaged_from, a.full_depth.overall)), Some((Some(16), 67.7)));
    store::write_json(&dir.path().join(run::WEIGHT_AVERAGE_FILE), &PreciseBnReport { epoch: 19, ..average }).unwrap();
    let out = publish(dir.path(), &results, &["--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--average-from 16"), "{err}");
    std::fs::remove_file(dir.path().join(run::WEIGHT_AVERAGE_FILE)).unwrap();

    // A precise-BN file about other weights (the run was resumed after it) is refused.
    store::write_json(&dir.path().join(run::PRECISE_BN_FILE), &PreciseBnReport { epoch: 19, ..report }).unwrap();
    let out = publish(dir.path(), &results, &["--force"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("epoch 19"), "{}", String::from_utf8_lossy(&out.stderr));
    let kept: Summary = store::read_json(&results.join("toy-precise.json")).unwrap();
    assert_eq!(kept.precise_bn.map(|p| p.epoch), Some(20), "the published result is left as it was");
}

/// `select`'s choice: a row, a paragraph and its plot in the report, a column in `compare`, a field
/// in the published result; a choice made before the run went on is refused.
#[test]
fn validation_selection_is_rendered_compared_and_published() {
    use longtail::eval::select::SELECTION_PLOT;
    use longtail::run::{Candidate, ValidationSelection, ValidationSet};
    let dir = tempfile::tempdir().unwrap();
    let summary = synthetic_run(dir.path(), "toy-select", 0.95, true);
    let candidates: Vec<Candidate> = (16..=20)
        .map(|epoch| Candidate { epoch, validation: 60.0 + (epoch % 3) as f64, test: Some(65.0 + (epoch % 4) as f64) })
        .collect();
    let selection = ValidationSelection {
        validation: ValidationSet {
            source: "CIFAR-10 training images outside the ρ = 100 subset (subset seed 0)".into(),
            seed: 1,
            per_class: [vec![0], vec![500; 9]].concat(),
            images: 4500,
        },
        rule: longtail::eval::select::RULE.into(),
        candidates: candidates.clone(),
        selected: EpochScore { epoch: 17, overall: 68.5, many: Some(80.0), medium: Some(66.0), few: Some(60.0) },
        selected_validation: 62.0,
        early_exit: Some(exit_at(0.9, 30.0e6, 69.25)),
        run_epochs: 20,
        provenance: provenance("longtail select run", "abc789"),
    };
    store::write_json(&dir.path().join(run::SELECTION_FILE), &selection).unwrap();
    let points: Vec<(usize, f64, Option<f64>)> = candidates.iter().map(|c| (c.epoch, c.validation, c.test)).collect();
    longtail::report::plots::validation_selection(&points, 17, "toy-select", &dir.path().join(SELECTION_PLOT)).unwrap();
    assert_eq!(png_size(&dir.path().join(SELECTION_PLOT)), (1000, 480));

    let md = std::fs::read_to_string(run_report::write(dir.path()).unwrap()).unwrap();
    assert!(md.contains("| epoch chosen on validation | 17 | 68.50 | 80.00 | 66.00 | 60.00 |"), "{md}");
    assert!(
        md.contains("Chosen on validation: epoch 17 of the 5 kept, the highest accuracy (62.00 %) on 4500 images"),
        "{md}"
    );
    assert!(md.contains("early exit at τ = 0.9 answers 69.25 %"), "{md}");
    assert!(md.contains(SELECTION_PLOT), "{md}");

    let results = dir.path().join("results");
    let out = publish(dir.path(), &results, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = results.join("toy-select.json");
    let published: Summary = store::read_json(&file).unwrap();
    assert_eq!(published.selected_on_validation.as_ref(), Some(&selection));
    assert_eq!(published.best, summary.best, "the test-chosen best stays beside it");
    let md = compare::compare(&[file.as_path()], None, &results.join("cmp.png")).unwrap();
    assert!(md.contains("| chosen on validation | early exit | chosen on validation, early exit |"), "{md}");
    assert!(md.contains("| 68.50 | 70.00 | 69.25 |"), "{md}");

    store::write_json(&dir.path().join(run::SELECTION_FILE), &ValidationSelection { run_epochs: 19, ..selection })
        .unwrap();
    let out = publish(dir.path(), &results, &["--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("longtail select"), "{err}");
    let kept: Summary = store::read_json(&file).unwrap();
    assert_eq!(kept.selected_on_validation.map(|v| v.run_epochs), Some(20), "the published result is left as it was");
}
