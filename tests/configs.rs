//! Every shipped config resolves, and each kind of model trains on a sliver of the real data
//! (short schedule via overrides: one epoch, two for the report's configs, so the LR schedule,
//! exits and Mixup all run past their first epoch), so a config cannot rot unnoticed.
mod common;

use std::path::{Path, PathBuf};

use longtail::config;
use longtail::train::trainer::{train, Outcome, TrainOptions};

fn all_configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_configs(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != MANIFEST) {
            out.push(p);
        }
    }
}

/// The report's table manifest lives beside its configs but is not a run config.
const MANIFEST: &str = "table.toml";

fn configs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    all_configs(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs"), &mut v);
    v.sort();
    v
}

#[test]
fn every_config_resolves() {
    let list = configs();
    assert!(list.len() >= 12, "found only {} configs", list.len());
    for path in list {
        let cfg = config::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A run is named after its config file, so its result is results/<config stem>.json,
        // which is where the report's table looks for it.
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(cfg.name.as_deref(), Some(stem.as_ref()), "{}: name differs from the file name", path.display());
    }
}

#[test]
fn every_config_trains_one_short_epoch() {
    for path in configs() {
        let cfg = config::load(&path, &[]).unwrap();
        // Shrink the network and the data, keep everything else (head, loss, augmentation).
        let epochs = if path.parent().is_some_and(|d| d.ends_with("report")) { 2 } else { 1 };
        let widths = if cfg.model.head == longtail::model::HeadKind::Grouped { "[6, 6, 12]" } else { "[4, 8, 8]" };
        let overrides: Vec<String> = [
            "device=\"cpu\"".to_string(),
            format!("model.widths={widths}"),
            "model.arch=\"resnet20\"".into(),
            "data.max_per_class=6".into(),
            format!("train.epochs={epochs}"),
            "train.batch_size=16".into(),
            "eval.max_test_images=64".into(),
        ]
        .into();
        let cfg = config::load(&path, &overrides).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions {
            config_path: Some(path.display().to_string()),
            ..common::train_options(dir.path(), Some(common::fixture_cifar10()))
        };
        match train(&cfg, &opts).unwrap_or_else(|e| panic!("{}: {e:#}", path.display())) {
            Outcome::Finished(s) => {
                // The summary's last epoch is what the last metrics line logged for it.
                let logged = longtail::run::RunDir::new(dir.path()).read_metrics().unwrap();
                let last_logged = logged.last().and_then(|m| m.test.as_ref()).map(|t| t.overall);
                assert_eq!(Some(s.last.overall), last_logged, "{}", path.display());
                assert_eq!(s.epochs, epochs);
                use longtail::model::HeadKind;
                let reslt = matches!(cfg.model.head, HeadKind::Bn3 | HeadKind::Grouped);
                assert_eq!(s.last_branches.is_some(), reslt, "{}: branch accuracies", path.display());
                assert_eq!(s.early_exit.is_some(), cfg.model.exits.is_some(), "{}: early exit", path.display());
                if let Some(e) = &s.early_exit {
                    assert_eq!(e.exit_fractions.len(), 3);
                    assert!((e.exit_fractions.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                    assert_eq!(s.early_exit_sweep.len(), 8);
                }
                // Training-time exit shares are logged per epoch exactly when there are exits.
                for m in longtail::run::RunDir::new(dir.path()).read_metrics().unwrap() {
                    match (&m.train_exit_fractions, cfg.model.exits.is_some()) {
                        (Some(f), true) => {
                            assert_eq!(f.len(), 3, "{}", path.display());
                            assert!((f.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{}: {f:?}", path.display());
                            // Each group's shares sum to 1 too (CIFAR-10 ρ=100 has all three).
                            let g = m.train_exit_fractions_by_group.as_ref().expect("group shares");
                            for shares in [&g.many, &g.medium, &g.few] {
                                let s = shares.as_ref().expect("every group has samples");
                                assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{}: {s:?}", path.display());
                            }
                        }
                        (None, false) => {}
                        (f, _) => panic!("{}: train_exit_fractions {f:?}", path.display()),
                    }
                }
            }
            _ => panic!("did not finish"),
        }
    }
}

#[test]
fn the_report_manifest_names_every_report_model() {
    use longtail::reproduce::manifest::Manifest;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let m = Manifest::load(&root.join("configs/report").join(MANIFEST), &root).unwrap();
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16] {
        let stem = format!("model-{n}");
        let row = m.rows.iter().find(|r| r.stem() == stem).unwrap_or_else(|| panic!("{stem} missing"));
        assert!(row.label.starts_with(&format!("Model {n}")), "{}", row.label);
        let text = std::fs::read_to_string(root.join(&row.config)).unwrap();
        assert!(text.starts_with(&format!("# REPORT.txt Model {n}:")), "{stem}: header must quote its row");
    }
    // Model 4 has no number to compare with: the report says it crashed.
    let m4 = m.rows.iter().find(|r| r.stem() == "model-4").unwrap();
    assert_eq!((m4.reported.overall, m4.reported.note.as_deref()), (None, Some("crashed")));
}
