//! The command line as a user meets it: clear errors with exit code 2, the subset export.
mod common;

use std::process::Command;

fn longtail(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_longtail")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn mistyped_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[train]\nepochz = 3\n").unwrap();
    let (code, _, err) =
        longtail(&["train", "-c", cfg.to_str().unwrap(), "--out", dir.path().join("r").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("epochz") && err.contains("bad.toml"), "{err}");
    assert!(!dir.path().join("r").exists(), "no run directory for a bad config");
}

#[test]
fn a_dataset_that_is_not_there_leaves_no_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("r");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/demo.toml");
    let args = ["train", "-c", cfg, "--out", out.to_str().unwrap(), "--data", empty.to_str().unwrap()];
    let (code, _, err) = longtail(&args);
    assert_eq!(code, 2);
    assert!(err.contains(empty.to_str().unwrap()), "the error names the folder: {err}");
    assert!(!out.exists(), "a run that could not start leaves no directory the same command would refuse");
}

#[test]
fn cuda_graphs_are_refused_with_the_reason_before_the_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    for (config, set, reason) in [
        ("configs/ce.toml", "seed=0", "CUDA"),
        ("configs/elf-r100.toml", "seed=0", "early exits"),
        ("configs/ce.toml", "data.augment.mixup=1.0", "Mixup"),
    ] {
        let (code, _, err) = longtail(&[
            "train",
            "-c",
            config,
            "--set",
            set,
            "--device",
            "cpu",
            "--cuda-graphs",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{config}: {err}");
        assert!(err.contains("--cuda-graphs") && err.contains(reason), "{config}: {err}");
        assert!(!out.exists(), "{config}: no run directory for a refused run");
    }
    let (code, _, err) = longtail(&["bench", "--device", "cuda:7"]);
    assert_eq!(code, 2);
    assert!(err.contains("libtorch sees"), "{err}");
}

#[test]
fn missing_dataset_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = longtail(&["data", "verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("longtail data download") && err.contains(dir.path().to_str().unwrap()), "{err}");
}

#[test]
fn subset_export_matches_the_shared_vector() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("idx.txt");
    let (Some(data), Some(vectors)) = (common::real_cifar10(), common::lt_indices_dir()) else { return };
    let (code, _, err) = longtail(&[
        "data",
        "subset",
        "--rho",
        "50",
        "--seed",
        "1",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let want = std::fs::read_to_string(vectors.join("imb50_seed1.txt")).unwrap();
    assert!(std::fs::read_to_string(out).unwrap() == want);
}

#[test]
fn publish_refuses_unfinished_runs_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = longtail(&["publish", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not finished"), "{err}");
}

/// `longtail diff` answers in its exit status as diff(1) does: 0 the same, 1 different, 2 an
/// error naming the path it could not read.
#[test]
fn diff_answers_in_its_exit_status() {
    use tch::Tensor;
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let w = Tensor::from_slice(&[1.0f32, 2.0]);
    Tensor::save_multi(&[("w", &w)], path("a.ot")).unwrap();
    Tensor::save_multi(&[("w", &w.copy())], path("b.ot")).unwrap();
    Tensor::save_multi(&[("w", &(&w * 2.0))], path("c.ot")).unwrap();
    let (code, out, _) = longtail(&["diff", &path("a.ot"), &path("b.ot")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 tensors, all equal"), "{out}");
    let (code, out, _) = longtail(&["diff", &path("a.ot"), &path("c.ot")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 differ (largest |Δ| 2.000e0): w"), "{out}");
    let (code, _, err) = longtail(&["diff", &path("a.ot"), &path("missing")]);
    assert_eq!(code, 2);
    assert!(err.contains("missing is neither a run directory"), "{err}");
}
