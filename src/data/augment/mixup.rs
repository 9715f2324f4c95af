//! Mixup (Zhang et al. 2018; docs/methods.md §8): one λ ~ Beta(α, α) per batch and a random partner for
//! every image, x̃ = λ·x + (1−λ)·x_π. The loss side (λ·ℓ(y) + (1−λ)·ℓ(y_π)) lives in
//! `loss::Targets`. Drawn on the data workers from the batch's own random stream, so a resumed
//! run mixes exactly the same pairs.
use crate::data::rng::Rng;

/// How a batch was mixed: its λ and, for every image, the label of the partner it was mixed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub lambda: f64,
    pub partner_labels: Vec<i64>,
}

/// A standard normal draw (Box–Muller; one of the pair is discarded, which is fine at one draw
/// per batch).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.unit(); // (0, 1], so the log is finite
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Gamma(shape, 1) by Marsaglia–Tsang; shapes below 1 use the boost Γ(a) = Γ(a+1)·U^(1/a).
pub fn gamma(rng: &mut Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u = 1.0 - rng.unit();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.unit();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// λ ~ Beta(α, α) as G₁ / (G₁ + G₂).
pub fn beta(rng: &mut Rng, alpha: f64) -> f64 {
    let a = gamma(rng, alpha);
    let b = gamma(rng, alpha);
    if a + b == 0.0 {
        0.5 // both draws underflowed (tiny α): the symmetric answer
    } else {
        a / (a + b)
    }
}

/// Mix the normalised images of one batch in place (`images`: n × `image_len` floats).
pub fn mix_batch(images: &mut [f32], labels: &[i64], image_len: usize, alpha: f64, rng: &mut Rng) -> Mix {
    let n = labels.len();
    let lambda = beta(rng, alpha);
    let mut partner: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut partner);
    let original = images.to_vec();
    let (l, r) = (lambda as f32, (1.0 - lambda) as f32);
    for (i, &j) in partner.iter().enumerate() {
        let own = &original[i * image_len..(i + 1) * image_len];
        let other = &original[j * image_len..(j + 1) * image_len];
        for ((o, &a), &b) in images[i * image_len..(i + 1) * image_len].iter_mut().zip(own).zip(other) {
            *o = l * a + r * b;
        }
    }
    Mix { lambda, partner_labels: partner.iter().map(|&j| labels[j]).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(alpha: f64) -> (f64, f64) {
        let mut rng = Rng::from_keys(&[11, (alpha * 1000.0) as u64]);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| beta(&mut rng, alpha)).collect();
        assert!(xs.iter().all(|&x| (0.0..=1.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var)
    }

    #[test]
    fn beta_draws_have_the_right_moments() {
        // Beta(α, α): mean 1/2, variance 1 / (4(2α + 1)).
        for alpha in [0.2, 1.0, 4.0] {
            let (mean, var) = moments(alpha);
            let want = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "α {alpha}: mean {mean}");
            assert!((var / want - 1.0).abs() < 0.05, "α {alpha}: var {var} vs {want}");
        }
    }

    #[test]
    fn mixing_is_a_convex_combination_with_partner_labels() {
        let mut images = vec![0.0f32, 0.0, 10.0, 10.0, 20.0, 20.0];
        let labels = vec![0i64, 1, 2];
        let mut rng = Rng::from_keys(&[3]);
        let mix = mix_batch(&mut images, &labels, 2, 1.0, &mut rng);
        let lam = mix.lambda as f32;
        for i in 0..3 {
            let partner = mix.partner_labels[i] as f32; // label k sits at value 10·k
            let want = lam * (10.0 * i as f32) + (1.0 - lam) * 10.0 * partner;
            assert!((images[2 * i] - want).abs() < 1e-4 && (images[2 * i + 1] - want).abs() < 1e-4);
        }
        let mut sorted = mix.partner_labels.clone();
        sorted.sort();
        assert_eq!(sorted, labels, "partners are a permutation of the batch");
    }
}
