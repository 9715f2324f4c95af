//! `longtail reproduce report` end to end: trains only what is missing (in parallel), skips what
//! is finished, and renders the table from the run directories without inventing rows.
mod common;

use std::path::Path;
use std::process::Command;

use longtail::run::{self, Summary};
use longtail::store;

fn longtail(args: &[&str]) -> (i32, String, String) {
    longtail_in(Path::new("."), args)
}

fn longtail_in(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_longtail")).current_dir(cwd).args(args).output().unwrap();
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
        finding = \"tiny runs learn little\"\n\
        [[row]]\ngroup = \"g\"\nlabel = \"Row D\"\nconfig = \"a.toml\"\nsource = \"test\"\nreported = { overall = 90.0 }\n\
        [[row]]\ngroup = \"g\"\nlabel = \"Row B\"\nconfig = \"b.toml\"\nsource = \"test\"\nreported = { note = \"crashed\" }\n\
        [[row]]\ngroup = \"g\"\nlabel = \"Row C\"\nconfig = \"c.toml\"\nsource = \"test\"\n\
        [[headline]]\nsystem = \"Sys\"\npaper = [\"Row A\", \"\", \"Row D\"]\nours = [\"Row A\", \"Row B\", \"Row D\"]\n";
    let path = dir.join("m.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn trains_what_is_missing_and_marks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let runs = dir.path().join("runs");
    let data = common::fixture_cifar10();
    let base = ["reproduce", "report", "--manifest", &m, "--runs", runs.to_str().unwrap(), "--threads", "1"];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        longtail(&v)
    };

    let (code, out, err) = with(&["--only", "a", "--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let a: Summary = store::read_json(&runs.join("a").join(run::SUMMARY_FILE)).unwrap();
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
    let b: Summary = store::read_json(&runs.join("b").join(run::SUMMARY_FILE)).unwrap();
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
    // In its first epoch there is no checkpoint to cite: it says so instead of naming one.
    assert!(row_c.contains("no checkpoint was written yet") && !row_c.contains("ckpt-0000"), "{row_c}");
    let (code, _, err) = with(&["--data", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("c: stopped earlier") && err.contains("--retry-failed"), "{err}");

    // From published results only: a's result (its best set to 20 so that both gaps exceed a
    // point), b never published. The run directories are not read.
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    let mut a_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("a").join(run::SUMMARY_FILE)).unwrap()).unwrap();
    a_json["best"]["overall"] = 20.0.into();
    std::fs::write(results.join("a.json"), a_json.to_string()).unwrap();
    std::fs::rename(&runs, dir.path().join("elsewhere")).unwrap();
    let (code, out, err) = longtail_in(dir.path(), &["reproduce", "report", "--manifest", &m, "--results", "results"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 of 4 rows have a published result (`results/<config>.json`"), "{out}");
    assert!(!out.contains(dir.path().to_str().unwrap()), "no machine path in the table: {out}");
    let row = |label: &str| out.lines().find(|l| l.contains(&format!("| {label} |"))).unwrap().to_string();
    assert!(row("Row A").contains("20.00 @") && row("Row A").contains("+7.50") && row("Row A").contains("fp32"));
    assert!(row("Row B").contains("not published"), "{}", row("Row B"));
    assert!(out.contains("**g · Row A** (+7.50): tiny runs learn little"), "{out}");
    assert!(out.contains("**g · Row D** (-70.00): no measured explanation recorded yet."), "{out}");
    for f in ["report-table.md", "report-table.html", "report-table.png", "report-headline.md"] {
        assert!(results.join(f).is_file(), "{f}");
    }
    let headline = std::fs::read_to_string(results.join("report-headline.md")).unwrap();
    let sys = headline.lines().find(|l| l.starts_with("| Sys |")).unwrap();
    // ρ=100: paper 12.50, no report, ours 20.00; ρ=50: B not published; ρ=10: D's paper 90.00.
    assert_eq!(sys, "| Sys | 12.50 | — | **20.00** | — | — | … | 90.00 | — | **20.00** |", "{headline}");
    assert!(!dir.path().join("runs").exists(), "--results trains nothing");
}

/// The committed table and the README's headline are exactly what the committed results render:
/// nobody edited a number by hand, and a clone re-renders the same table.
#[test]
fn committed_table_and_readme_headline_are_rendered_from_results() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    for entry in std::fs::read_dir(repo.join("results")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, results.join(path.file_name().unwrap())).unwrap();
        }
    }
    let manifest = repo.join("configs/report/table.toml");
    let args = ["reproduce", "report", "--manifest", manifest.to_str().unwrap(), "--results", "results"];
    let (code, _, err) = longtail_in(dir.path(), &args);
    assert_eq!(code, 0, "{err}");
    let fresh = std::fs::read_to_string(results.join("report-table.md")).unwrap();
    let committed = std::fs::read_to_string(repo.join("results/report-table.md")).unwrap();
    assert!(
        fresh == committed,
        "results/report-table.md is not what `longtail reproduce report --table-only --results results` renders \
         from results/*.json; re-render it"
    );
    let headline = std::fs::read_to_string(results.join("report-headline.md")).unwrap();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    assert!(
        readme.contains(&headline),
        "README.md's headline table is not the rendered results/report-headline.md; paste it again:\n{headline}"
    );
}

#[test]
fn unknown_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let (code, _, err) = longtail(&["reproduce", "report", "--manifest", &m, "--only", "model-99", "--table-only"]);
    assert_eq!(code, 2);
    assert!(err.contains("model-99") && err.contains("a, b"), "{err}");
}

/// A finished run whose summary no longer reads is named and left alone: never trained over,
/// never shown as "not run".
#[test]
fn a_run_that_does_not_read_is_skipped_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let runs = dir.path().join("runs");
    let a = runs.join("a");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join(run::CONFIG_FILE), "[train]\nepochs = 2\n").unwrap();
    std::fs::write(a.join(run::SUMMARY_FILE), "{\"name\": ").unwrap();
    let (code, out, err) =
        longtail(&["reproduce", "report", "--manifest", &m, "--runs", runs.to_str().unwrap(), "--only", "a"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("a: ") && err.contains("summary.json") && err.contains("skipped"), "{err}");
    let row = out.lines().find(|l| l.contains("| Row A |")).unwrap();
    assert!(row.contains("unreadable") && row.contains("summary.json"), "{row}");
    let files: Vec<_> = std::fs::read_dir(&a).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files.len(), 2, "nothing trained into it: {files:?}");
}
