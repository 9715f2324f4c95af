//! The run records as files: every result ever committed still loads, a record round-trips
//! through its JSON unchanged, and a record this longtail cannot read is refused by name.
use std::path::{Path, PathBuf};

use longtail::run::{Summary, SUMMARY_SCHEMA};

fn committed_results() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_result_loads_and_round_trips() {
    let files = committed_results();
    assert!(files.len() >= 20, "found only {} results", files.len());
    for path in files {
        let summary = Summary::read(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        assert!(summary.schema_version <= SUMMARY_SCHEMA, "{}", path.display());
        // What loads writes back as the same JSON value (the typed fields keep their spelling),
        // plus the fields that older results lack and read as their defaults.
        let original: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut written = serde_json::to_value(&summary).unwrap();
        for defaulted in ["schema_version", "precision"] {
            if original.get(defaulted).is_none() {
                written.as_object_mut().unwrap().remove(defaulted);
            }
        }
        let (original, written) = (original.as_object().unwrap(), written.as_object().unwrap());
        for (key, value) in original {
            assert_eq!(written.get(key), Some(value), "{}: {key} changes when read and written back", path.display());
        }
        let added: Vec<&String> = written.keys().filter(|k| !original.contains_key(*k)).collect();
        assert!(added.is_empty(), "{}: writing it back adds {added:?}", path.display());
    }
}

/// A committed result with early-exit timing attached, edited, in a temporary file.
fn a_result_with(edit: impl FnOnce(&mut serde_json::Value)) -> (tempfile::TempDir, PathBuf) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/elf-margin-t99-wmean-xw03-r100.json");
    let mut value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(source).unwrap()).unwrap();
    edit(&mut value);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.json");
    std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
    (dir, path)
}

#[test]
fn a_result_of_a_newer_schema_is_refused_by_name() {
    let (_dir, path) = a_result_with(|v| v["schema_version"] = (SUMMARY_SCHEMA + 1).into());
    let err = format!("{:#}", Summary::read(&path).unwrap_err());
    assert!(err.contains(&path.display().to_string()) && err.contains("newer longtail"), "{err}");
    let (_dir, path) = a_result_with(|v| v["schema_version"] = SUMMARY_SCHEMA.into());
    assert_eq!(Summary::read(&path).unwrap().schema_version, SUMMARY_SCHEMA);
}

#[test]
fn a_result_without_a_version_is_version_one() {
    let (_dir, path) = a_result_with(|v| {
        v.as_object_mut().unwrap().remove("schema_version");
    });
    assert_eq!(Summary::read(&path).unwrap().schema_version, 1);
}

#[test]
fn an_unknown_dataset_is_refused_with_the_names_it_knows() {
    let (_dir, path) = a_result_with(|v| v["dataset"] = "MNIST".into());
    let err = format!("{:#}", Summary::read(&path).unwrap_err());
    assert!(err.contains("\"MNIST\" is not known") && err.contains("CIFAR-10"), "{err}");
}

#[test]
fn weights_named_otherwise_than_last_or_best_are_refused() {
    let (_dir, path) = a_result_with(|v| v["early_exit_timing"]["weights"] = "newest".into());
    let err = format!("{:#}", Summary::read(&path).unwrap_err());
    assert!(err.contains("newest"), "{err}");
    let (_dir, path) = a_result_with(|v| v["early_exit_timing"]["weights"] = "best".into());
    assert_eq!(Summary::read(&path).unwrap().early_exit_timing.unwrap().weights, longtail::run::Weights::Best);
}
