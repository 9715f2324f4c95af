//! Multiply–accumulate counts derived from layer shapes (docs/methods.md §2): convolutions and fully
//! connected layers only; BN, ReLU, additions and pooling are not counted, as is customary.
use super::resnet::BackboneSpec;

/// MACs of a k×k convolution producing an `h_out × w_out × c_out` map.
pub fn conv_macs(c_in: i64, c_out: i64, k: i64, groups: i64, h_out: i64, w_out: i64) -> u64 {
    (h_out * w_out * c_out * (c_in / groups) * k * k) as u64
}

/// Cumulative backbone MACs at the end of the stem and of each stage, for 32×32 inputs.
pub fn backbone_macs(spec: &BackboneSpec) -> [u64; 4] {
    let mut side = 32;
    let mut total = conv_macs(3, spec.widths[0], 3, 1, side, side);
    let mut out = [total, 0, 0, 0];
    let mut c_in = spec.widths[0];
    for (s, &w) in spec.widths.iter().enumerate() {
        for b in 0..spec.blocks_per_stage {
            if s > 0 && b == 0 {
                side /= 2;
            }
            total += conv_macs(c_in, w, 3, 1, side, side) + conv_macs(w, w, 3, 1, side, side);
            c_in = w;
        }
        out[s + 1] = total;
    }
    out
}

/// MACs of the whole plain network: backbone plus the final linear classifier.
pub fn network_macs(spec: &BackboneSpec, num_classes: i64) -> u64 {
    backbone_macs(spec)[3] + (spec.widths[2] * num_classes) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet32_macs_match_the_reference() {
        let spec = BackboneSpec { widths: [16, 32, 64], blocks_per_stage: 5 };
        let cum = backbone_macs(&spec);
        assert_eq!(cum[0], 442_368);
        assert_eq!((cum[1] as f64 / 1e4).round() / 100.0, 24.04);
        assert_eq!((cum[2] as f64 / 1e4).round() / 100.0, 46.45);
        let full = network_macs(&spec, 10);
        assert_eq!((full as f64 / 1e4).round() / 100.0, 68.86);
        assert_eq!(full - cum[3], 640);
        // A stage-1 block: two 16→16 3×3 convs on 32×32.
        assert_eq!(cum[1] - cum[0], 5 * 2 * conv_macs(16, 16, 3, 1, 32, 32));
        assert_eq!(conv_macs(16, 16, 3, 1, 32, 32) * 2, 4_718_592);
    }
}
