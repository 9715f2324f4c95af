//! The long-tailed subsets must be bit-identical to numpy's `np.random.seed(s)` +
//! `np.random.shuffle` construction (LDAM-DRW's `imbalance_cifar.py`) for every shared vector.
mod common;

use longtail::data::cifar::{load_train, Cifar};
use longtail::data::subset::{class_counts, format_indices, long_tailed_indices};

#[test]
fn every_shared_vector_matches() {
    let (Some(release), Some(vectors)) = (common::real_cifar10(), common::lt_indices_dir()) else { return };
    let train = load_train(Cifar::Cifar10, &release).unwrap();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(vectors).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("imb") else { continue };
        let (rho, seed) = rest.split_once("_seed").expect("imb{rho}_seed{s}");
        let (rho, seed): (f64, u32) = (rho.parse().unwrap(), seed.parse().unwrap());
        let expected = std::fs::read_to_string(&path).unwrap();
        let ours = long_tailed_indices(&train.labels, 10, rho, seed);
        assert_eq!(ours.len(), class_counts(50_000, 10, rho).iter().sum::<usize>());
        assert!(format_indices(&ours) == expected, "{name}: our subset differs from the numpy vector");
        checked += 1;
    }
    assert_eq!(checked, 8, "expected ρ ∈ {{10, 50, 100, 200}} × seeds {{0, 1}}");
}

#[test]
fn subset_counts_follow_the_profile() {
    // The counts depend only on every class having 5,000 training images, as the fixture does.
    let train = load_train(Cifar::Cifar10, &common::fixture_cifar10()).unwrap();
    let idx = long_tailed_indices(&train.labels, 10, 100.0, 0);
    let subset = train.select(&idx);
    assert_eq!(subset.class_counts(), vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
    assert_eq!(subset.len(), 12_406);
}
