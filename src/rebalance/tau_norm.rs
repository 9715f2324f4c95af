//! τ-normalised classifier (Kang et al., "Decoupling Representation and Classifier for
//! Long-Tailed Recognition", ICLR 2020): divide each class's weight vector by its norm to the
//! power γ. Head classes grow larger weight norms under a long-tailed prior; γ = 1 equalises
//! them, γ = 0 is the classifier as trained. (Kang et al. call the exponent τ; here it is γ, as
//! the logit-adjustment τ is another number.) The bias is kept.
use super::heads::Head;
use super::StageTwoContext;
use crate::model::classifier::LastLayer;

/// γ from 0 (as trained) to 2 in steps of 0.1.
pub fn settings() -> Vec<f64> {
    (0..=20).map(|i| i as f64 / 10.0).collect()
}

pub const DESCRIPTION: &str = "divides each class's weight vector w_j of every head's last layer by ‖w_j‖^γ (the \
                               shared classifier of a ResLT head, so every branch at once), exits included";

/// Why γ-normalisation cannot change this model, if it cannot.
pub fn not_applicable(base: &[LastLayer]) -> Option<String> {
    base.iter().any(|l| l.cosine).then(|| {
        "a cosine classifier divides its weights by their norms already, so their norms carry no prior to remove"
            .to_string()
    })
}

pub fn normalised(layer: &LastLayer, gamma: f64) -> LastLayer {
    let norms = layer.weight.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
    LastLayer { weight: &layer.weight / norms.pow_tensor_scalar(gamma), ..layer.duplicate() }
}

pub fn heads(ctx: &StageTwoContext, gamma: f64) -> Vec<Head> {
    ctx.base.iter().map(|layer| Head::plain(normalised(layer, gamma))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn layer(rows: &[[f32; 2]]) -> LastLayer {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        LastLayer {
            weight: Tensor::from_slice(&flat).view([rows.len() as i64, 2]),
            bias: Some(Tensor::from_slice(&[0.5f32, -0.5])),
            bias_copies: 1.0,
            cosine: false,
        }
    }

    #[test]
    fn gamma_one_gives_unit_rows_gamma_zero_the_weights_as_trained_and_the_bias_stays() {
        let l = layer(&[[3.0, 4.0], [0.0, 2.0]]);
        let unit = Vec::<f32>::try_from(normalised(&l, 1.0).weight.view([-1])).unwrap();
        assert_eq!(unit, vec![0.6, 0.8, 0.0, 1.0]);
        // γ = 0.5: row norms 5 and 2 → divided by √5 and √2.
        let half = Vec::<f32>::try_from(normalised(&l, 0.5).weight.view([-1])).unwrap();
        let want = [3.0 / 5f32.sqrt(), 4.0 / 5f32.sqrt(), 0.0, 2.0 / 2f32.sqrt()];
        half.iter().zip(want).for_each(|(g, w)| assert!((g - w).abs() < 1e-6, "{half:?}"));
        let same = normalised(&l, 0.0);
        assert_eq!((same.weight - &l.weight).abs().max().double_value(&[]), 0.0);
        assert_eq!(Vec::<f32>::try_from(same.bias.unwrap()).unwrap(), vec![0.5, -0.5]);
    }

    #[test]
    fn cosine_classifiers_are_refused_with_the_reason() {
        let mut cosine = layer(&[[1.0, 0.0]]);
        cosine.cosine = true;
        assert!(not_applicable(&[cosine]).unwrap().contains("norms already"));
        assert!(not_applicable(&[layer(&[[1.0, 0.0]])]).is_none());
    }
}
