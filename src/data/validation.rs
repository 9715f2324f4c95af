//! A held-out validation set from the training images a long-tailed subset leaves out.
//!
//! CIFAR-LT trains on a fraction of the training set (ρ = 100: 12,406 of 50,000 images), so the
//! rest are images no run has seen. Taking up to `per_class` of them per class gives a validation
//! set on which a final epoch can be chosen without looking at the test set, where the reference
//! codebases report the best *test* epoch. The head class is the exception: the subset keeps all
//! of it (n_max = 5,000 on CIFAR-10), so it has no image left and the validation set has no class 0.
//!
//! The draw is numpy-reproducible, like the subset itself: `np.random.seed(seed)`, then per class
//! in class order, shuffle that class's left-out indices (ascending) and keep the first
//! `per_class`.
use super::image::Label;
use super::mt19937::Mt19937;

/// The seed of the validation draw (the subset's own is 0; any fixed value would do, since the
/// images are disjoint from the subset's whatever the seed).
pub const VALIDATION_SEED: u32 = 1;

/// Images per class by default: CIFAR-10's test set has 1,000, and every class but the head has at
/// least 1,129 left out at ρ = 10 (more at larger ρ).
pub const DEFAULT_PER_CLASS: usize = 500;

/// Indices into the full training set (`labels`) of up to `per_class` images of each class that
/// are not in `used`, class by class. A class with fewer left keeps all of them (possibly none).
pub fn held_out_indices(
    labels: &[Label],
    num_classes: usize,
    used: &[usize],
    per_class: usize,
    seed: u32,
) -> Vec<usize> {
    let mut in_use = vec![false; labels.len()];
    for &i in used {
        if let Some(flag) = in_use.get_mut(i) {
            *flag = true;
        }
    }
    let mut rng = Mt19937::new(seed);
    let mut chosen = Vec::new();
    for class in 0..num_classes {
        let mut left: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] as usize == class && !in_use[i]).collect();
        rng.shuffle(&mut left);
        chosen.extend(left.into_iter().take(per_class));
    }
    chosen
}

/// Images per class of a set given by its labels (for the validation set's description).
pub fn per_class_counts(labels: &[Label], indices: &[usize], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for &i in indices {
        counts[labels[i] as usize] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::subset::long_tailed_indices;

    /// 3 classes × 6 images, labels cycling 0,1,2.
    fn labels() -> Vec<Label> {
        (0..18).map(|i| (i % 3) as Label).collect()
    }

    #[test]
    fn only_left_out_images_are_drawn_and_a_class_with_none_left_is_absent() {
        let labels = labels();
        // Class 0 entirely used (0,3,…,15), class 1 two used, class 2 none.
        let used = vec![0, 3, 6, 9, 12, 15, 1, 4];
        let val = held_out_indices(&labels, 3, &used, 10, 7);
        assert!(val.iter().all(|i| !used.contains(i)));
        assert_eq!(per_class_counts(&labels, &val, 3), vec![0, 4, 6]);
        // Class order, each class's images together.
        let classes: Vec<Label> = val.iter().map(|&i| labels[i]).collect();
        assert_eq!(classes, vec![1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn the_cap_holds_and_the_draw_is_a_fixed_function_of_the_seed() {
        let labels = labels();
        let a = held_out_indices(&labels, 3, &[], 2, 7);
        assert_eq!(per_class_counts(&labels, &a, 3), vec![2, 2, 2]);
        assert_eq!(a, held_out_indices(&labels, 3, &[], 2, 7));
        let others: Vec<Vec<usize>> = (0..20).map(|s| held_out_indices(&labels, 3, &[], 2, s)).collect();
        assert!(others.iter().any(|o| *o != a), "the seed changes which images are drawn");
    }

    #[test]
    fn numpy_shuffle_order_of_the_left_out_images() {
        // numpy: np.random.seed(1); x = np.arange(6); np.random.shuffle(x) → [2 1 4 0 3 5]
        // (recomputed with Python's own MT19937 set to init_genrand(1) and numpy's legacy
        // shuffle, since numpy is not installed here).
        let labels: Vec<Label> = vec![0; 6];
        assert_eq!(held_out_indices(&labels, 1, &[], 6, 1), vec![2, 1, 4, 0, 3, 5]);
    }

    proptest::proptest! {
        /// Any labels, any used subset, any cap: distinct images, none used, and per class
        /// exactly min(cap, images left).
        #[test]
        fn draws_distinct_unused_images_up_to_the_cap(
            labels in proptest::collection::vec(0u16..5, 0..200),
            used_mask in proptest::collection::vec(proptest::bool::ANY, 200),
            per_class in 0usize..12,
            seed in proptest::num::u32::ANY,
        ) {
            let used: Vec<usize> = (0..labels.len()).filter(|&i| used_mask[i]).collect();
            let val = held_out_indices(&labels, 5, &used, per_class, seed);
            let distinct: std::collections::HashSet<usize> = val.iter().copied().collect();
            proptest::prop_assert_eq!(distinct.len(), val.len());
            proptest::prop_assert!(val.iter().all(|&i| i < labels.len() && !used_mask[i]));
            let counts = per_class_counts(&labels, &val, 5);
            for (class, &n) in counts.iter().enumerate() {
                let left = (0..labels.len()).filter(|&i| labels[i] as usize == class && !used_mask[i]).count();
                proptest::prop_assert_eq!(n, left.min(per_class));
            }
        }
    }

    #[test]
    fn cifar10_shaped_labels_at_rho_100_leave_no_head_image() {
        // 500 images per class stand in for 5,000: the head class is used up at any ρ.
        let labels: Vec<Label> = (0..5000).map(|i| (i % 10) as Label).collect();
        let used = long_tailed_indices(&labels, 10, 100.0, 0);
        let val = held_out_indices(&labels, 10, &used, 200, VALIDATION_SEED);
        let counts = per_class_counts(&labels, &val, 10);
        assert_eq!(counts[0], 0);
        assert!(counts[1..].iter().all(|&n| n == 200), "{counts:?}");
        let used: std::collections::HashSet<usize> = used.into_iter().collect();
        assert!(val.iter().all(|i| !used.contains(i)));
    }
}
