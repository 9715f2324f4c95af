//! Long-tailed subsets exactly as the community builds them (Cao et al. 2019; docs/methods.md §1).
//!
//! Per-class counts follow the exponential profile n_i = ⌊n_max · (1/ρ)^(i/(C−1))⌋, and the kept
//! images of each class are the first n_i of that class's ascending index list after a numpy
//! legacy shuffle, one shared RNG stream across classes in class order.
use super::image::Label;
use super::mt19937::Mt19937;

/// Per-class image counts for imbalance ratio `rho` (ρ = n_max / n_min), computed in f64 and
/// truncated toward zero like Python's `int()`.
pub fn class_counts(total_train: usize, num_classes: usize, rho: f64) -> Vec<usize> {
    let n_max = total_train as f64 / num_classes as f64;
    let factor = 1.0 / rho;
    (0..num_classes)
        .map(|i| {
            let exponent = if num_classes > 1 { i as f64 / (num_classes - 1) as f64 } else { 0.0 };
            (n_max * factor.powf(exponent)) as usize
        })
        .collect()
}

/// ρ must be finite, ≥ 1 and leave the rarest class at least one image (ρ ≤ n_max): ρ = ∞ or
/// 10⁶ would give the tail classes no image at all, and the run would train on fewer classes
/// than it scores.
pub fn check_rho(key: &str, rho: f64, total_train: usize, num_classes: usize) -> Result<(), crate::check::BadValue> {
    crate::check::require(rho.is_finite() && rho >= 1.0, key, rho, "must be a finite number ≥ 1")?;
    let counts = class_counts(total_train, num_classes, rho);
    crate::check::require(
        counts.iter().all(|&n| n >= 1),
        key,
        rho,
        &format!(
            "leaves the rarest class no image (counts end {:?}); ρ ≤ {} here",
            counts.last().unwrap_or(&0),
            total_train / num_classes.max(1)
        ),
    )
}

/// Indices (into the full training set) of the long-tailed subset, in kept order: all kept
/// images of class 0 in shuffled order, then class 1, and so on.
pub fn long_tailed_indices(labels: &[Label], num_classes: usize, rho: f64, seed: u32) -> Vec<usize> {
    let counts = class_counts(labels.len(), num_classes, rho);
    let mut rng = Mt19937::new(seed);
    let mut kept = Vec::with_capacity(counts.iter().sum());
    for (class, &n) in counts.iter().enumerate() {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] as usize == class).collect();
        rng.shuffle(&mut idx);
        kept.extend(idx.into_iter().take(n));
    }
    kept
}

/// Render indices one per line, the format of the shared test vectors.
pub fn format_indices(indices: &[usize]) -> String {
    let mut s = String::with_capacity(indices.len() * 6);
    for i in indices {
        s.push_str(&i.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_reference_table() {
        assert_eq!(class_counts(50_000, 10, 100.0), vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
        assert_eq!(class_counts(50_000, 10, 50.0), vec![5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100]);
        assert_eq!(class_counts(50_000, 10, 10.0), vec![5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]);
        let c100 = class_counts(50_000, 100, 100.0);
        assert_eq!(c100.iter().sum::<usize>(), 10_847);
        assert_eq!((c100[34], c100[35], c100[69], c100[70]), (102, 98, 20, 19));
        assert_eq!(class_counts(50_000, 100, 50.0).iter().sum::<usize>(), 12_608);
        assert_eq!(class_counts(50_000, 100, 10.0).iter().sum::<usize>(), 19_573);
    }
}
