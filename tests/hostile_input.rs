//! Careless or hostile input is refused at the boundary, by name, before anything trains or is
//! written: numbers that are not finite, out of range or zero where they must not be; names that
//! lead out of their folder; an empty config; a FIFO where a data file belongs. And a property
//! test over `--set` values: every one is an error naming its key, or a config that validates.
mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use longtail::config::{load, resolve};
use proptest::prelude::*;

const BASE: &str = "device = \"cpu\"\n[train]\nrecipe = \"ldam\"\n";

fn refused(set: &str) -> String {
    match resolve(BASE, "test.toml", &[set.to_string()]) {
        Ok(_) => panic!("--set {set} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn numbers_that_would_train_wrongly_are_refused_naming_the_key() {
    let cases = [
        ("train.lr=nan", "train.lr = NaN"),
        ("train.lr=inf", "train.lr = inf"),
        ("train.lr=-0.1", "train.lr = -0.1"),
        ("train.momentum=nan", "train.momentum"),
        ("train.weight_decay=inf", "train.weight_decay"),
        ("train.gamma=nan", "train.gamma"),
        ("train.milestones=[160, 10]", "train.milestones"),
        ("train.threads=100000", "train.threads"),
        ("loss.scale=nan", "loss.scale"),
        ("loss.drw_beta=1.0", "loss.drw_beta = 1"),
        ("loss.label_smoothing=1.0", "loss.label_smoothing"),
        ("loss.exit_threshold=2.0", "loss.exit_threshold"),
        ("loss.max_m=-1.0", "loss.max_m"),
        ("data.rho=inf", "data.rho = inf"),
        ("data.rho=0.5", "data.rho"),
        ("data.rho=6000.0", "leaves the rarest class no image"),
        ("data.max_per_class=0", "data.max_per_class"),
        ("data.augment.mixup=nan", "data.augment.mixup"),
        ("data.augment.cutout=100000", "data.augment.cutout"),
        ("eval.batch_size=0", "eval.batch_size"),
        ("eval.max_test_images=0", "eval.max_test_images"),
        ("eval.exit_threshold=0.0", "eval.exit_threshold"),
        ("name=\"../escape\"", "name = \"../escape\""),
        ("name=\"\"", "name"),
        ("model.widths=[16, 32, 100000]", "model.widths = [16, 32, 100000]: about"),
    ];
    for (set, expected) in cases {
        let e = refused(set);
        assert!(e.contains(expected), "--set {set}: {e}");
    }
}

#[test]
fn a_bad_set_value_is_blamed_on_the_command_line_not_the_file() {
    let e = refused("train.lr=\"fast\"");
    assert!(e.starts_with("--set train.lr=\"fast\":"), "{e}");
    let e = resolve("[train]\nlr = \"fast\"\n", "my.toml", &[]).unwrap_err().to_string();
    assert!(e.starts_with("my.toml:"), "{e}");
}

#[test]
fn an_empty_config_and_a_name_outside_its_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let e = load(&empty, &[]).unwrap_err().to_string();
    assert!(e.contains("empty.toml is empty"), "{e}");
    let escaping = dir.path().join("x.toml");
    std::fs::write(&escaping, "name = \"../../etc\"\n[train]\nrecipe = \"ldam\"\n").unwrap();
    assert!(load(&escaping, &[]).unwrap_err().to_string().contains("name = \"../../etc\""));
}

fn longtail_with_timeout(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_longtail"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if started.elapsed() > limit {
            longtail::interrupt::send(pid, libc::SIGKILL);
            panic!("longtail {args:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    waiter.join().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn command_line_numbers_are_checked_by_clap() {
    let data = common::fixture_cifar10();
    let data = data.to_str().unwrap();
    for rho in ["0", "nan", "inf", "-3", "x"] {
        let flag = format!("--rho={rho}");
        for cmd in [vec!["data", "info", "--data", data, &flag], vec!["data", "subset", "--data", data, &flag]] {
            let o = longtail_with_timeout(&cmd, Duration::from_secs(60));
            assert_eq!(o.status.code(), Some(2), "{cmd:?}");
            assert!(stderr(&o).contains("--rho"), "{cmd:?}: {}", stderr(&o));
        }
    }
    // ρ that leaves the rarest class nothing, against the dataset itself.
    let o = longtail_with_timeout(&["data", "info", "--data", data, "--rho", "1e6"], Duration::from_secs(60));
    assert!(!o.status.success() && stderr(&o).contains("leaves the rarest class no image"), "{}", stderr(&o));
    let o = longtail_with_timeout(&["eval", "nowhere", "--exit-threshold", "0.5,2"], Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--exit-threshold") && stderr(&o).contains("(0, 1]"), "{}", stderr(&o));
}

#[test]
fn a_fifo_where_a_data_file_belongs_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::fixture_cifar10()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    // Not the first file, which locating the release checks; verify would stop at the synthetic
    // set's MD5 before it, so `data info` and `train` read it.
    let fifo = dir.path().join("data_batch_2.bin");
    std::fs::remove_file(&fifo).unwrap();
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path it is given.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let d = dir.path().to_str().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, "device = \"cpu\"\n[train]\nrecipe = \"ldam\"\nepochs = 1\n").unwrap();
    let out = dir.path().join("run");
    let (c, o) = (config.to_str().unwrap(), out.to_str().unwrap());
    for args in [vec!["data", "info", "--data", d], vec!["train", "-c", c, "--out", o, "--data", d]] {
        let o = longtail_with_timeout(&args, Duration::from_secs(60));
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("data_batch_2.bin") && stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    }
    assert!(!out.exists(), "a refused training leaves no run directory");
    // A FIFO as the config file.
    std::fs::remove_file(&config).unwrap();
    let c = std::ffi::CString::new(config.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let args = ["train", "-c", config.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = longtail_with_timeout(&args, Duration::from_secs(60));
    assert!(stderr(&o).contains("tiny.toml") && stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

/// Keys whose values the property test draws, each with values of every kind that matters.
fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "train.lr",
        "train.momentum",
        "train.weight_decay",
        "train.gamma",
        "train.epochs",
        "train.batch_size",
        "train.warmup_start_factor",
        "train.threads",
        "train.workers",
        "loss.scale",
        "loss.max_m",
        "loss.drw_beta",
        "loss.alpha",
        "loss.label_smoothing",
        "loss.exit_threshold",
        "data.rho",
        "data.max_per_class",
        "data.augment.mixup",
        "data.augment.crop_padding",
        "data.augment.cutout",
        "eval.batch_size",
        "eval.max_test_images",
        "model.widths",
        "name",
    ])
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        (-5i64..300_000).prop_map(|v| v.to_string()),
        Just("0".to_string()),
        "[a-z./]{0,8}".prop_map(|s| format!("{s:?}")),
        prop::collection::vec(-3i64..5000, 0..5).prop_map(|v| format!("{v:?}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    /// Never a panic; an error names the key it is about (or the `--set` it came from).
    #[test]
    fn any_set_value_is_an_error_naming_its_key_or_a_valid_config(key in key(), value in value()) {
        let set = format!("{key}={value}");
        match resolve(BASE, "test.toml", std::slice::from_ref(&set)) {
            Ok(cfg) => prop_assert!(cfg.validate().is_ok()),
            Err(e) => {
                let e = e.to_string();
                let leaf = key.rsplit('.').next().unwrap();
                prop_assert!(e.contains(key) || e.contains(&set) || e.contains(leaf), "--set {set}: {e}");
            }
        }
    }
}
