//! Integrity you can check: every checkpoint and summary has a SHA-256 beside it, and every
//! published result a line in `results/SHA256SUMS`; a changed byte is an error naming the file,
//! on resume, on `publish` and on reading the table. Tiny trainings on the synthetic fixture.
mod common;

use std::path::Path;

use longtail::config::Config;
use longtail::report::publish::publish;
use longtail::run::{self, RunDir, Summary};
use longtail::store;
use longtail::train::trainer::{train, Outcome, TrainOptions};

fn tiny(epochs: usize) -> Config {
    common::tiny_config(epochs, &["name=\"tiny\""])
}

fn options(dir: &Path, resume: bool, stop_after: Option<usize>) -> TrainOptions {
    TrainOptions { resume, stop_after, ..common::train_options(dir, Some(common::fixture_cifar10())) }
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_in_a_checkpoint_stops_the_resume_by_name() {
    let cfg = tiny(2);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(train(&cfg, &options(dir.path(), false, Some(1))).unwrap(), Outcome::Paused { .. }));
    let ckpt = dir.path().join("ckpt-0001.ot");
    let sidecar = std::fs::read_to_string(store::checksum_path(&ckpt)).unwrap();
    assert!(sidecar.trim_end().ends_with("  ckpt-0001.ot"), "{sidecar}");
    flip_a_byte(&ckpt);
    let e = match train(&cfg, &options(dir.path(), true, None)) {
        Ok(_) => panic!("a corrupted checkpoint was loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("ckpt-0001.ot does not match its checksum"), "{e}");
}

#[test]
fn an_edited_summary_is_not_published_and_an_edited_result_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let Outcome::Finished(_) = train(&tiny(1), &options(dir.path(), false, None)).unwrap() else {
        panic!("did not finish")
    };
    let summary_path = dir.path().join(run::SUMMARY_FILE);
    let honest = std::fs::read_to_string(&summary_path).unwrap();
    let mut s: Summary = serde_json::from_str(&honest).unwrap();
    s.best.overall = 99.9;
    store::write_json(&summary_path, &s).unwrap(); // by hand: the checksum stays the old one
    let results = dir.path().join("results");
    let e = format!("{:#}", publish(dir.path(), None, &results, false).unwrap_err());
    assert!(e.contains("summary.json does not match its checksum"), "{e}");
    let e = format!("{:#}", longtail::report::diff::diff(dir.path(), dir.path()).unwrap_err());
    assert!(e.contains("summary.json does not match its checksum"), "diff reads it too: {e}");
    assert!(!results.join("tiny.json").exists());

    std::fs::write(&summary_path, &honest).unwrap();
    let published = publish(dir.path(), None, &results, false).unwrap();
    let sums = std::fs::read_to_string(results.join(store::SUMS_FILE)).unwrap();
    let bytes = std::fs::read(&published.path).unwrap();
    assert_eq!(sums, format!("{}  tiny.json\n", store::sha256_hex(&bytes)));
    assert!(Summary::read(&published.path).is_ok());
    // A second result joins the list in name order; republishing replaces its own line.
    publish(dir.path(), Some("a-copy"), &results, false).unwrap();
    publish(dir.path(), None, &results, true).unwrap();
    let names: Vec<String> = std::fs::read_to_string(results.join(store::SUMS_FILE))
        .unwrap()
        .lines()
        .map(|l| l.split("  ").nth(1).unwrap().to_string())
        .collect();
    assert_eq!(names, ["a-copy.json", "tiny.json"]);

    let mut edited: Summary = Summary::read(&published.path).unwrap();
    edited.last.overall += 1.0;
    store::write_json(&published.path, &edited).unwrap();
    let e = format!("{:#}", Summary::read(&published.path).unwrap_err());
    assert!(e.contains("tiny.json does not match its line in") && e.contains("SHA256SUMS"), "{e}");
}

/// A small tmpfs, unmounted when dropped; `None` where this user may not mount (not root).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk(dir))
    }

    fn grow(&self, size: &str) {
        let remount = format!("remount,size={size}");
        let s = std::process::Command::new("mount").args(["-o", &remount]).arg(self.0.path()).status().unwrap();
        assert!(s.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_is_an_error_and_the_run_resumes_once_there_is_room() {
    let Some(disk) = SmallDisk::mount("400k") else {
        eprintln!("skipped: this user cannot mount a small tmpfs to fill (needs root)");
        return;
    };
    let run = disk.0.path().join("run");
    let cfg = tiny(30);
    let opts = TrainOptions { keep_weights_from: Some(1), ..options(&run, false, None) };
    let e = match train(&cfg, &opts) {
        Ok(_) => panic!("30 epochs of kept weights fit in 400 kB"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("No space left on device") && e.contains(".ot"), "{e}");
    let leftovers: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .chain(std::fs::read_dir(run.join(run::KEPT_WEIGHTS_DIR)).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "half-written temporaries left: {leftovers:?}");
    disk.grow("8m");
    let resumed = TrainOptions { keep_weights_from: Some(1), ..options(&run, true, None) };
    let Outcome::Finished(summary) = train(&cfg, &resumed).unwrap() else { panic!("did not finish") };
    assert_eq!(summary.epochs, 30);
    assert_eq!(RunDir::new(&run).read_metrics().unwrap().len(), 30);
}
