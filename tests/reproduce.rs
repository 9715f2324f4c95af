//! `longtail reproduce report` end to end: trains only what is missing (in parallel), skips what
//! is finished, and renders the table from the run directories without inventing rows.
mod common;

use std::path::Path;
use std::process::Command;

use longtail::run::{self, Summary};

fn longtail(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_longtail")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const TINY: &str = "device = \"cpu\"\nseed = SEED\n[data]\nrho = 1\nmax_per_class = 8\n\
    [model]\narch = \"resnet20\"\nwidths = [4, 8, 8]\n[train]\nrecipe = \"ldam\"\nepochs = 2\nbatch_size = 32\n\
    [eval]\nmax_test_images = 100\n";

fn manifest(dir: &Path) -> String {
    for (name, seed) in [("a", 0), ("b", 1)] {
        std::fs::write(dir.join(format!("{name}.toml")), TINY.replace("SEED", &seed.to_string())).unwrap();
    }
    // c diverges at once: its learning rate is absurd.
    let c = TINY.replace("SEED", "2").replace("epochs = 2", "epochs = 2\nlr = 1e30\nwarmup_epochs = 0");
    std::fs::write(dir.join("c.toml"), c).unwrap();
    let text = "title = \"tiny table\"\n\
        [[row]]\ngroup = \"g\"\nlabel = \"Row A\"\nconfig = \"a.toml\"\nsource = \"test\"\nreported = { overall = 12.5 }\n\
        [[row]]\ngroup = \"g\"\nlabel = \"Row B\"\nconfig = \"b.toml\"\nsource = \"test\"\nreported = { note = \"crashed\" }\n\
        [[row]]\ngroup = \"g\"\nlabel = \"Row C\"\nconfig = \"c.toml\"\nsource = \"test\"\n";
    let path = dir.join("m.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn trains_what_is_missing_and_marks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let runs = dir.path().join("runs");
    let data = common::cifar10_dir();
    let base = ["reproduce", "report", "--manifest", &m, "--runs", runs.to_str().unwrap(), "--threads", "1"];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        longtail(&v)
    };

    let (code, out, err) = with(&["--only", "a", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let a: Summary = run::read_json(&runs.join("a").join(run::SUMMARY_FILE)).unwrap();
    assert!(out.contains(&format!("{:.2} @{}", a.best.overall, a.best.epoch)), "{out}");
    assert!(out.contains(&format!("{:+.2}", a.best.overall - 12.5)), "Δ against the reported number: {out}");
    assert!(!out.contains("Row B"), "--only restricts the table to the chosen rows");

    // Whole table without training: B is marked as not run, nothing invented for it.
    let (code, out, err) = with(&["--table-only"]);
    assert_eq!(code, 0, "{err}");
    let row_b = out.lines().find(|l| l.contains("Row B")).unwrap();
    assert!(row_b.contains("crashed") && row_b.contains("not run"), "{row_b}");
    assert!(!runs.join("b").exists(), "--table-only trains nothing");

    // Now everything: A is skipped, B trained.
    let (code, out, err) = with(&["--jobs", "2", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("a: finished") && err.contains("skipped"), "{err}");
    let b: Summary = run::read_json(&runs.join("b").join(run::SUMMARY_FILE)).unwrap();
    let row_b = out.lines().find(|l| l.contains("Row B")).unwrap();
    assert!(row_b.contains(&format!("{:.2}", b.last.overall)) && row_b.contains("finished"), "{row_b}");
    for f in ["report-table.md", "report-table.html", "report-table.png"] {
        assert!(runs.join(f).is_file(), "{f}");
    }
    assert!(runs.join("b.log").is_file(), "each training logs beside its run directory");
    // c was stopped by the divergence guard: said at the end of its run, shown in the table,
    // and skipped the next time.
    assert!(err.contains("c stopped: training diverged") && err.contains("its log ends"), "{err}");
    let row_c = out.lines().find(|l| l.contains("Row C")).unwrap();
    assert!(row_c.contains("stopped: training diverged at epoch 1"), "{row_c}");
    let (code, _, err) = with(&["--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("c: stopped earlier") && err.contains("--retry-failed"), "{err}");
}

#[test]
fn unknown_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let (code, _, err) = longtail(&["reproduce", "report", "--manifest", &m, "--only", "model-99", "--table-only"]);
    assert_eq!(code, 2);
    assert!(err.contains("model-99") && err.contains("a, b"), "{err}");
}
