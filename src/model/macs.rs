//! Multiply–accumulate counts derived from layer shapes (docs/methods.md §2): convolutions and fully
//! connected layers only; BN, ReLU, additions and pooling are not counted, as is customary.
use super::resnet::BackboneSpec;
use crate::data::image::ImageShape;

/// Height and width of a feature map.
pub type MapSize = (i64, i64);

/// A stride-2 3×3 convolution with padding 1 halves each side, rounding up.
pub fn halved((h, w): MapSize) -> MapSize {
    ((h + 1) / 2, (w + 1) / 2)
}

/// The size of the stem's output and of each stage's, for input images of `input` (stages 2
/// and 3 start with a stride-2 block).
pub fn stage_sizes(input: ImageShape) -> [MapSize; 3] {
    let first = (input.height as i64, input.width as i64);
    [first, halved(first), halved(halved(first))]
}

/// MACs of a k×k convolution producing an `h_out × w_out × c_out` map.
pub fn conv_macs(c_in: i64, c_out: i64, k: i64, groups: i64, h_out: i64, w_out: i64) -> u64 {
    (h_out * w_out * c_out * (c_in / groups) * k * k) as u64
}

/// Cumulative backbone MACs at the end of the stem and of each stage, for input images of `input`.
pub fn backbone_macs(spec: &BackboneSpec, input: ImageShape) -> [u64; 4] {
    let sizes = stage_sizes(input);
    let (h, w) = sizes[0];
    let mut total = conv_macs(input.channels as i64, spec.widths[0], 3, 1, h, w);
    let mut out = [total, 0, 0, 0];
    let mut c_in = spec.widths[0];
    for (s, &width) in spec.widths.iter().enumerate() {
        let (h, w) = sizes[s];
        for _ in 0..spec.blocks_per_stage {
            total += conv_macs(c_in, width, 3, 1, h, w) + conv_macs(width, width, 3, 1, h, w);
            c_in = width;
        }
        out[s + 1] = total;
    }
    out
}

/// MACs of the whole plain network: backbone plus the final linear classifier.
pub fn network_macs(spec: &BackboneSpec, num_classes: i64, input: ImageShape) -> u64 {
    backbone_macs(spec, input)[3] + (spec.widths[2] * num_classes) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet32_macs_match_the_reference() {
        let spec = BackboneSpec { widths: [16, 32, 64], blocks_per_stage: 5 };
        let cum = backbone_macs(&spec, crate::data::cifar::SHAPE);
        assert_eq!(cum[0], 442_368);
        assert_eq!((cum[1] as f64 / 1e4).round() / 100.0, 24.04);
        assert_eq!((cum[2] as f64 / 1e4).round() / 100.0, 46.45);
        let full = network_macs(&spec, 10, crate::data::cifar::SHAPE);
        assert_eq!((full as f64 / 1e4).round() / 100.0, 68.86);
        assert_eq!(full - cum[3], 640);
        // A stage-1 block: two 16→16 3×3 convs on 32×32.
        assert_eq!(cum[1] - cum[0], 5 * 2 * conv_macs(16, 16, 3, 1, 32, 32));
        assert_eq!(conv_macs(16, 16, 3, 1, 32, 32) * 2, 4_718_592);
    }

    #[test]
    fn other_input_sizes_scale_every_map() {
        let spec = BackboneSpec { widths: [16, 32, 64], blocks_per_stage: 5 };
        let shape = |h, w| ImageShape { channels: 3, height: h, width: w };
        assert_eq!(stage_sizes(shape(64, 48)), [(64, 48), (32, 24), (16, 12)]);
        assert_eq!(stage_sizes(shape(15, 15)), [(15, 15), (8, 8), (4, 4)], "odd sides round up");
        // Twice the side, four times the work in every layer.
        let (small, large) = (backbone_macs(&spec, shape(32, 32)), backbone_macs(&spec, shape(64, 64)));
        assert_eq!(large.map(|m| m / 4), small);
    }
}
