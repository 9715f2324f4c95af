//! Shared helpers for the integration tests.
//!
//! Most tests need "a CIFAR-10 folder", not the real images: they get [`fixture_cifar10`], a
//! synthetic release the tests write themselves, so they run on a fresh clone. The few whose
//! meaning is the real release (bit-identical subsets, MD5s, learning on real images) ask for
//! [`real_cifar10`], which fails when `CI` is set and the data is missing, and otherwise skips
//! with a line saying how to get it.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How the tests start a training: a new run into `run_dir` on `data_dir`, plain output, no
/// resume, no pause; tests change what they need with struct update syntax.
pub fn train_options(run_dir: &Path, data_dir: Option<PathBuf>) -> longtail::train::trainer::TrainOptions {
    longtail::train::trainer::TrainOptions {
        run_dir: run_dir.to_path_buf(),
        resume: false,
        data_dir,
        config_path: None,
        command: "cargo test".into(),
        plain: true,
        stop_after: None,
        threads: None,
        cuda_graphs: false,
        fork_from: None,
        keep_weights_from: None,
        tensorboard: false,
    }
}

/// Records per file and bytes per record of the CIFAR-10 binary release.
const RECORDS: usize = 10_000;
const RECORD_BYTES: usize = 1 + 3 * 32 * 32;
const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

/// The real CIFAR-10 binary release: `$LONGTAIL_DATA`, else `../shared/data/cifar-10-batches-bin`,
/// else `data/cifar-10-batches-bin` (where `make test` downloads it). `None` (the test then
/// returns early, having said why) when it is missing outside CI; a failure inside CI, so CI
/// cannot pass without the data.
pub fn real_cifar10() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = match std::env::var_os("LONGTAIL_DATA") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![manifest.join("../shared/data/cifar-10-batches-bin"), manifest.join("data/cifar-10-batches-bin")],
    };
    if let Some(found) = candidates.iter().find(|d| d.join("data_batch_1.bin").is_file()) {
        return Some(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    assert!(
        std::env::var_os("CI").is_none(),
        "CIFAR-10 not found at {}: set LONGTAIL_DATA to the cifar-10-batches-bin folder (CI is set, so this test \
         cannot be skipped)",
        looked.join(" or ")
    );
    eprintln!(
        "skipped: this test needs the real CIFAR-10 (looked in {}); `make test` downloads it, or set LONGTAIL_DATA",
        looked.join(", ")
    );
    None
}

/// The community-standard LT subsets exported from numpy (`imb{ρ}_seed{s}.txt`), beside the
/// real release; `None` as [`real_cifar10`] says.
pub fn lt_indices_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LONGTAIL_LT_INDICES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-lt-indices"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "LT index vectors not found at {}: set LONGTAIL_LT_INDICES",
        dir.display()
    );
    eprintln!(
        "skipped: this test needs the numpy subset vectors (looked in {}); set LONGTAIL_LT_INDICES",
        dir.display()
    );
    None
}

/// A synthetic CIFAR-10 release in the official format and size (five training files and a
/// test file of 10,000 records each, 5,000 / 1,000 images per class), so every reader, subset
/// rule and validation split applies to it unchanged. Each class is a colour and a stripe
/// direction under noise: a small network learns it in a few steps, and different seeds and
/// subsets give different numbers. Written once under the cargo target folder and reused.
pub fn fixture_cifar10() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synthetic-cifar-10-v1");
        if !dir.join("test_batch.bin").is_file() {
            // Written beside and renamed into place, so a test binary running at the same time
            // never reads a half-written folder.
            let staging = dir.with_extension(format!("staging-{}", std::process::id()));
            write_synthetic_release(&staging);
            if std::fs::rename(&staging, &dir).is_err() {
                // Another test process put its copy there first: the same bytes.
                let _ = std::fs::remove_dir_all(&staging);
            }
        }
        dir
    })
    .clone()
}

fn write_synthetic_release(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (f, name) in TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), synthetic_batch(&mut rng, f)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), synthetic_batch(&mut rng, TRAIN_FILES.len())).unwrap();
    std::fs::write(
        dir.join("batches.meta.txt"),
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n",
    )
    .unwrap();
}

/// One file: 1,000 records of each class, in an order shuffled by the file's index.
fn synthetic_batch(rng: &mut XorShift, file: usize) -> Vec<u8> {
    let mut labels: Vec<u8> = (0..RECORDS).map(|i| (i % 10) as u8).collect();
    let mut order = XorShift(0xD1B5_4A32_D192_ED03 ^ file as u64);
    for i in (1..labels.len()).rev() {
        labels.swap(i, order.below(i + 1));
    }
    let mut bytes = Vec::with_capacity(RECORDS * RECORD_BYTES);
    for &label in &labels {
        bytes.push(label);
        let c = label as usize;
        let colour = [(c * 25) as i32, (255 - c * 25) as i32, ((c * 67) % 256) as i32];
        for (channel, &base) in colour.iter().enumerate() {
            for y in 0..32usize {
                for x in 0..32 {
                    // Stripes along rows for even classes, along columns for odd ones.
                    let along = if c.is_multiple_of(2) { y } else { x };
                    let stripe = if (along / 4).is_multiple_of(2) { 40 } else { -40 };
                    let noise = rng.below(97) as i32 - 48;
                    let v = base + stripe * (channel as i32 % 2 * 2 - 1) + noise;
                    bytes.push(v.clamp(0, 255) as u8);
                }
            }
        }
    }
    bytes
}

/// A small, fast generator: the fixture needs fixed bytes, not statistical quality.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The tiny training the run-directory and integrity tests use (ResNet-20 4/8/8, 16 images per
/// class, batch 32: 5 steps an epoch, on CPU at one thread), plus `extra` overrides.
pub fn tiny_config(epochs: usize, extra: &[&str]) -> longtail::config::Config {
    let epochs = format!("train.epochs={epochs}");
    let base = [
        "data.rho=1",
        "data.max_per_class=16",
        "model.arch=\"resnet20\"",
        "model.widths=[4, 8, 8]",
        "train.batch_size=32",
        epochs.as_str(),
        "train.threads=1",
        "eval.max_test_images=100",
    ];
    let o: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
    longtail::config::resolve("device = \"cpu\"\n[train]\nrecipe = \"ldam\"\n", "test", &o).unwrap()
}
