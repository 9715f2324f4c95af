//! Readers on corrupt input: typed errors that name the file, never a panic, never a silently
//! shorter dataset.
mod common;

use std::path::Path;

use longtail::data::cifar::{load_train, parse_batch, verify, Cifar, DataError, IMAGE_BYTES};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4 * 3074), records in 0usize..4) {
        for kind in [Cifar::Cifar10, Cifar::Cifar100] {
            match parse_batch(kind, Path::new("f.bin"), &bytes, records) {
                Ok(set) => {
                    prop_assert_eq!(set.len(), records);
                    prop_assert_eq!(bytes.len(), records * kind.record_bytes());
                }
                Err(DataError::WrongSize { actual, .. }) => prop_assert_eq!(actual as usize, bytes.len()),
                Err(DataError::BadLabel { label, .. }) => prop_assert!(label as usize >= kind.num_classes()),
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }
    }

    #[test]
    fn well_formed_records_round_trip(labels in proptest::collection::vec(0u8..10, 1..5), fill in any::<u8>()) {
        let mut bytes = Vec::new();
        for &l in &labels {
            bytes.push(l);
            bytes.extend(std::iter::repeat_n(fill, IMAGE_BYTES));
        }
        let set = parse_batch(Cifar::Cifar10, Path::new("f.bin"), &bytes, labels.len()).unwrap();
        prop_assert_eq!(set.labels, labels.iter().map(|&l| l as u16).collect::<Vec<_>>());
        prop_assert!(set.pixels.iter().all(|&p| p == fill));
    }

    #[test]
    fn one_byte_short_or_long_is_rejected(extra in prop_oneof![Just(-1i64), Just(1i64)], records in 1usize..3) {
        let len = (records * 3073) as i64 + extra;
        let bytes = vec![0u8; len as usize];
        let err = parse_batch(Cifar::Cifar10, Path::new("x/data_batch_3.bin"), &bytes, records).unwrap_err();
        prop_assert!(err.to_string().contains("x/data_batch_3.bin"));
    }
}

/// Copy a release into a temp dir, then damage one file.
fn damaged_copy(src: &Path, damage: impl Fn(&mut Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        let mut bytes = std::fs::read(src.join(name)).unwrap();
        if name == "data_batch_4.bin" {
            damage(&mut bytes);
        }
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn a_truncated_file_is_named_by_the_reader_and_by_verify() {
    let dir = damaged_copy(&common::fixture_cifar10(), |b| b.truncate(b.len() - 1000));
    let err = load_train(Cifar::Cifar10, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::WrongSize { .. }), "{err}");
    assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
    let Some(release) = common::real_cifar10() else { return };
    let dir = damaged_copy(&release, |b| b.truncate(b.len() - 1000));
    let err = verify(Cifar::Cifar10, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::WrongSize { .. }) && err.to_string().contains("data_batch_4.bin"), "{err}");
}

#[test]
fn verify_catches_a_flipped_pixel_by_md5() {
    let Some(release) = common::real_cifar10() else { return };
    let dir = damaged_copy(&release, |b| b[5000] ^= 1);
    let err = verify(Cifar::Cifar10, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::BadChecksum { .. }), "{err}");
    assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
}

#[test]
fn a_bad_label_is_refused_with_its_record() {
    let dir = damaged_copy(&common::fixture_cifar10(), |b| b[3073 * 7] = 42);
    let err = load_train(Cifar::Cifar10, dir.path()).unwrap_err();
    assert!(matches!(err, DataError::BadLabel { record: 7, label: 42, .. }), "{err}");
}

#[test]
fn the_real_release_verifies() {
    let Some(release) = common::real_cifar10() else { return };
    let reports = verify(Cifar::Cifar10, &release).unwrap();
    assert_eq!(reports.len(), 6);
    assert!(reports.iter().all(|r| r.md5_checked));
}
