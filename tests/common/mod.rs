//! Shared helpers for the integration tests.
#![allow(dead_code)]
use std::path::PathBuf;

/// The real CIFAR-10 binary release: `$LONGTAIL_DATA`, else `../shared/data/cifar-10-batches-bin`.
/// Tests that need it fail (never skip) when it is missing, so CI cannot pass without data.
pub fn cifar10_dir() -> PathBuf {
    let dir = std::env::var_os("LONGTAIL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-batches-bin"));
    assert!(
        dir.join("data_batch_1.bin").is_file(),
        "CIFAR-10 not found at {}: set LONGTAIL_DATA to the cifar-10-batches-bin folder",
        dir.display()
    );
    dir
}

/// The community-standard LT subsets exported from numpy (`imb{ρ}_seed{s}.txt`).
pub fn lt_indices_dir() -> PathBuf {
    let dir = std::env::var_os("LONGTAIL_LT_INDICES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar-10-lt-indices"));
    assert!(dir.is_dir(), "LT index vectors not found at {}: set LONGTAIL_LT_INDICES", dir.display());
    dir
}
