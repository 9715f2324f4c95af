//! The 14 AutoAugment image operations on RGB CHW `u8` images of any height and width, with
//! PIL's semantics (the reference AutoAugment port applies them through PIL): lookup tables for
//! the point ops, `Image.blend` (float blend, truncated) for the enhancers, and inverse-mapped
//! affine transforms with pixel-centre coordinates, nearest or bicubic sampling and a grey (128)
//! fill. The point ops need no shape; the others take the image's [`ImageShape`].
use crate::data::image::ImageShape;

/// The fill value of geometric ops for uncovered pixels (DeepVoltaire: fillcolor 128).
pub const FILL: u8 = 128;

fn apply_lut(img: &mut [u8], lut: &[u8; 256]) {
    for v in img.iter_mut() {
        *v = lut[*v as usize];
    }
}

pub fn invert(img: &mut [u8]) {
    for v in img.iter_mut() {
        *v = 255 - *v;
    }
}

/// Keep the top `bits` bits of every value.
pub fn posterize(img: &mut [u8], bits: u32) {
    let mask = if bits >= 8 { 0xff } else { !((1u8 << (8 - bits)) - 1) };
    for v in img.iter_mut() {
        *v &= mask;
    }
}

/// Invert every value at or above `threshold` (PIL `ImageOps.solarize`).
pub fn solarize(img: &mut [u8], threshold: f64) {
    for v in img.iter_mut() {
        if (*v as f64) >= threshold {
            *v = 255 - *v;
        }
    }
}

/// Stretch each channel to the full 0..255 range (PIL `ImageOps.autocontrast`, cutoff 0).
pub fn autocontrast(img: &mut [u8], shape: ImageShape) {
    for c in img.chunks_exact_mut(shape.plane()) {
        let lo = *c.iter().min().expect("non-empty plane");
        let hi = *c.iter().max().expect("non-empty plane");
        if hi <= lo {
            continue;
        }
        let scale = 255.0 / (hi - lo) as f64;
        let offset = -(lo as f64) * scale;
        let mut lut = [0u8; 256];
        for (i, l) in lut.iter_mut().enumerate() {
            *l = (i as f64 * scale + offset).clamp(0.0, 255.0) as u8;
        }
        apply_lut(c, &lut);
    }
}

/// Histogram equalisation per channel (PIL `ImageOps.equalize`).
pub fn equalize(img: &mut [u8], shape: ImageShape) {
    for c in img.chunks_exact_mut(shape.plane()) {
        let mut hist = [0usize; 256];
        for &v in c.iter() {
            hist[v as usize] += 1;
        }
        let nonzero: Vec<usize> = hist.iter().copied().filter(|&h| h > 0).collect();
        if nonzero.len() <= 1 {
            continue;
        }
        let step = (nonzero.iter().sum::<usize>() - nonzero[nonzero.len() - 1]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (i, l) in lut.iter_mut().enumerate() {
            *l = (n / step).min(255) as u8;
            n += hist[i];
        }
        apply_lut(c, &lut);
    }
}

/// PIL `Image.blend(degenerate, img, factor)`: degenerate + factor·(img − degenerate), clipped
/// to 0..255 and truncated.
fn blend(img: &mut [u8], degenerate: &[u8], factor: f64) {
    for (v, &d) in img.iter_mut().zip(degenerate) {
        let x = d as f64 + factor * (*v as f64 - d as f64);
        *v = x.clamp(0.0, 255.0) as u8;
    }
}

/// ITU-R 601-2 luma of pixel `i` as PIL's `convert("L")` computes it (fixed point, rounded).
fn luma(img: &[u8], plane: usize, i: usize) -> u8 {
    let (r, g, b) = (img[i] as u32, img[plane + i] as u32, img[2 * plane + i] as u32);
    ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
}

/// `ImageEnhance.Brightness`: blend with black.
pub fn brightness(img: &mut [u8], factor: f64) {
    blend(img, &vec![0u8; img.len()], factor);
}

/// `ImageEnhance.Color`: blend with the greyscale version.
pub fn color(img: &mut [u8], shape: ImageShape, factor: f64) {
    let plane = shape.plane();
    let mut grey = vec![0u8; 3 * plane];
    for i in 0..plane {
        let l = luma(img, plane, i);
        grey[i] = l;
        grey[plane + i] = l;
        grey[2 * plane + i] = l;
    }
    blend(img, &grey, factor);
}

/// `ImageEnhance.Contrast`: blend with a flat image at the rounded mean luma.
pub fn contrast(img: &mut [u8], shape: ImageShape, factor: f64) {
    let plane = shape.plane();
    let mean = (0..plane).map(|i| luma(img, plane, i) as f64).sum::<f64>() / plane as f64;
    let flat = vec![(mean + 0.5) as u8; img.len()];
    blend(img, &flat, factor);
}

/// `ImageEnhance.Sharpness`: blend with PIL's SMOOTH filter (3×3 kernel [1 1 1; 1 5 1; 1 1 1]/13,
/// border pixels unchanged).
pub fn sharpness(img: &mut [u8], shape: ImageShape, factor: f64) {
    let (h, w, plane) = (shape.height, shape.width, shape.plane());
    let mut smooth = img.to_vec();
    for c in 0..shape.channels {
        let p = &img[c * plane..(c + 1) * plane];
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let mut s = 0u32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let k = if dy == 1 && dx == 1 { 5 } else { 1 };
                        s += k * p[(y + dy - 1) * w + x + dx - 1] as u32;
                    }
                }
                smooth[c * plane + y * w + x] = ((s as f64 / 13.0) + 0.5).min(255.0) as u8;
            }
        }
    }
    blend(img, &smooth, factor);
}

/// How an affine transform samples the source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sampling {
    Nearest,
    Bicubic,
}

/// PIL's bicubic kernel (a = −0.5).
fn cubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// PIL `Image.transform(AFFINE, (a, b, c, d, e, f))`: each output pixel centre (x+½, y+½) reads
/// the source at (a·x' + b·y' + c, d·x' + e·y' + f); sources outside the image get `FILL`.
pub fn affine(img: &mut [u8], shape: ImageShape, m: [f64; 6], sampling: Sampling) {
    let (h, w, n) = (shape.height, shape.width, shape.plane());
    let src = img.to_vec();
    let [a, b, c, d, e, f] = m;
    for y in 0..h {
        for x in 0..w {
            let (xc, yc) = (x as f64 + 0.5, y as f64 + 0.5);
            let u = a * xc + b * yc + c;
            let v = d * xc + e * yc + f;
            let inside = u >= 0.0 && u < w as f64 && v >= 0.0 && v < h as f64;
            for ch in 0..shape.channels {
                let plane = &src[ch * n..(ch + 1) * n];
                img[ch * n + y * w + x] = if !inside {
                    FILL
                } else {
                    match sampling {
                        Sampling::Nearest => plane[v.floor() as usize * w + u.floor() as usize],
                        Sampling::Bicubic => {
                            let (uu, vv) = (u - 0.5, v - 0.5);
                            let (x0, y0) = (uu.floor(), vv.floor());
                            let (dx, dy) = (uu - x0, vv - y0);
                            let clamp_to = |i: f64, side: usize| i.clamp(0.0, (side - 1) as f64) as usize;
                            let mut acc = 0.0;
                            for j in -1..=2 {
                                let wy = cubic(dy - j as f64);
                                let row = clamp_to(y0 + j as f64, h) * w;
                                let mut r = 0.0;
                                for i in -1..=2 {
                                    r += cubic(dx - i as f64) * plane[row + clamp_to(x0 + i as f64, w)] as f64;
                                }
                                acc += wy * r;
                            }
                            acc.clamp(0.0, 255.0) as u8
                        }
                    }
                };
            }
        }
    }
}

/// PIL `rotate(degrees)` (counter-clockwise, about the centre (w/2, h/2), nearest) with a grey
/// fill.
pub fn rotate(img: &mut [u8], shape: ImageShape, degrees: f64) {
    let t = -degrees.to_radians();
    let (cos, sin) = (t.cos(), t.sin());
    let (cx, cy) = (shape.width as f64 / 2.0, shape.height as f64 / 2.0);
    let (a, b, d, e) = (cos, sin, -sin, cos);
    let c = a * -cx + b * -cy + cx;
    let f = d * -cx + e * -cy + cy;
    affine(img, shape, [a, b, c, d, e, f], Sampling::Nearest);
}

pub fn shear_x(img: &mut [u8], shape: ImageShape, s: f64) {
    affine(img, shape, [1.0, s, 0.0, 0.0, 1.0, 0.0], Sampling::Bicubic);
}

pub fn shear_y(img: &mut [u8], shape: ImageShape, s: f64) {
    affine(img, shape, [1.0, 0.0, 0.0, s, 1.0, 0.0], Sampling::Bicubic);
}

/// Shift the content by `-pixels` horizontally: output (x, y) reads source (x + pixels, y).
pub fn translate_x(img: &mut [u8], shape: ImageShape, pixels: f64) {
    affine(img, shape, [1.0, 0.0, pixels, 0.0, 1.0, 0.0], Sampling::Nearest);
}

pub fn translate_y(img: &mut [u8], shape: ImageShape, pixels: f64) {
    affine(img, shape, [1.0, 0.0, 0.0, 0.0, 1.0, pixels], Sampling::Nearest);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CIFAR's 32×32: the hand-computed values below are for it.
    const SHAPE: ImageShape = crate::data::cifar::SHAPE;
    const SIDE: usize = 32;
    const PLANE: usize = SIDE * SIDE;

    fn solid(v: [u8; 3]) -> Vec<u8> {
        let mut img = vec![0u8; 3 * PLANE];
        for c in 0..3 {
            img[c * PLANE..(c + 1) * PLANE].fill(v[c]);
        }
        img
    }

    fn dot(x: usize, y: usize) -> Vec<u8> {
        let mut img = vec![0u8; 3 * PLANE];
        for c in 0..3 {
            img[c * PLANE + y * SIDE + x] = 255;
        }
        img
    }

    fn lit(img: &[u8]) -> Vec<(usize, usize)> {
        (0..PLANE).filter(|&i| img[i] == 255).map(|i| (i % SIDE, i / SIDE)).collect()
    }

    #[test]
    fn invert_posterize_solarize_exact() {
        let mut img = solid([0, 100, 255]);
        invert(&mut img);
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (255, 155, 0));
        let mut img = solid([0b1011_0111, 255, 3]);
        posterize(&mut img, 4);
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (0b1011_0000, 0b1111_0000, 0));
        let mut img = solid([0b1011_0111, 0, 0]);
        posterize(&mut img, 8);
        assert_eq!(img[0], 0b1011_0111);
        let mut img = solid([127, 128, 200]);
        solarize(&mut img, 128.0);
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (127, 127, 55));
        let mut img = solid([255, 0, 10]);
        solarize(&mut img, 256.0);
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (255, 0, 10), "threshold 256 changes nothing");
    }

    #[test]
    fn autocontrast_stretches_each_channel_to_full_range() {
        let mut img = solid([55, 7, 7]);
        img[5] = 140; // red plane: 55..140 (scale exactly 3)
        img[PLANE + 3] = 9; // green: 7..9
        autocontrast(&mut img, SHAPE);
        let red = &img[..PLANE];
        assert_eq!((*red.iter().min().unwrap(), *red.iter().max().unwrap()), (0, 255));
        assert_eq!(img[PLANE + 3], 255);
        assert_eq!(img[PLANE], 0);
        assert!(img[2 * PLANE..].iter().all(|&v| v == 7), "a flat channel is left alone");
    }

    #[test]
    fn equalize_follows_pils_lookup_table() {
        // A ramp squeezed into levels 0..63, 16 pixels each. PIL: step = (1024 − 16) // 255 = 3,
        // lut[i] = (step//2 + 16·i) // step, clipped to 255 (small images saturate the top).
        let mut img: Vec<u8> = (0..3 * PLANE).map(|i| ((i % PLANE) / 16) as u8).collect();
        equalize(&mut img, SHAPE);
        let level = |l: usize| img[l * 16];
        assert_eq!((level(0), level(1), level(10), level(47), level(48), level(63)), (0, 5, 53, 251, 255, 255));
        let red = &img[..PLANE];
        assert!(red.windows(2).all(|w| w[0] <= w[1]), "the mapping is monotone");
        let mut flat = solid([9, 9, 9]);
        equalize(&mut flat, SHAPE);
        assert_eq!(flat, solid([9, 9, 9]), "a single-level channel is left alone");
    }

    #[test]
    fn enhancers_blend_as_pil() {
        let mut img = solid([100, 200, 50]);
        brightness(&mut img, 1.5);
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (150, 255, 75));
        let mut img = solid([100, 200, 50]);
        color(&mut img, SHAPE, 0.0);
        // luma = (100·19595 + 200·38470 + 50·7471 + 32768) >> 16 = 153
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (153, 153, 153));
        let mut img = solid([100, 200, 50]);
        contrast(&mut img, SHAPE, 0.5);
        // flat mean 153: 153 + 0.5·(v − 153) → 126.5, 176.5, 101.5 truncated
        assert_eq!((img[0], img[PLANE], img[2 * PLANE]), (126, 176, 101));
        let mut img = solid([100, 200, 50]);
        sharpness(&mut img, SHAPE, 0.1);
        assert_eq!(img, solid([100, 200, 50]), "a flat image has nothing to sharpen");
        let mut img = dot(10, 10);
        sharpness(&mut img, SHAPE, 0.0);
        assert_eq!(img[10 * SIDE + 10], (255.0f64 * 5.0 / 13.0 + 0.5) as u8);
        assert_eq!(img[10 * SIDE + 11], (255.0f64 / 13.0 + 0.5) as u8);
    }

    #[test]
    fn translate_moves_a_known_pixel_and_fills_grey() {
        let mut img = dot(10, 20);
        translate_x(&mut img, SHAPE, 3.0);
        assert_eq!(lit(&img), vec![(7, 20)]);
        assert_eq!(img[31], FILL, "uncovered right edge is grey");
        let mut img = dot(10, 20);
        translate_y(&mut img, SHAPE, -4.0);
        assert_eq!(lit(&img), vec![(10, 24)]);
        assert_eq!(img[0], FILL);
    }

    #[test]
    fn rotate_quarter_turn_is_exact() {
        // PIL rotates counter-clockwise: the pixel right of centre goes above it.
        let mut img = dot(20, 16);
        rotate(&mut img, SHAPE, 90.0);
        assert_eq!(lit(&img), vec![(16, 11)]);
        let mut img = dot(5, 5);
        rotate(&mut img, SHAPE, 0.0);
        assert_eq!(lit(&img), vec![(5, 5)]);
        let mut img = solid([0, 0, 0]);
        rotate(&mut img, SHAPE, 45.0);
        assert_eq!(img[0], FILL, "corners leave the frame and are grey");
        assert_eq!(img[16 * SIDE + 16], 0);
    }

    /// On a non-square image the geometric ops use its own width and height: a half turn about
    /// (w/2, h/2) sends pixel (x, y) to (w−1−x, h−1−y), a translation fills the uncovered
    /// columns, and the point and enhancer ops see every pixel of every plane.
    #[test]
    fn geometric_ops_follow_the_images_own_size() {
        let shape = ImageShape { channels: 3, height: 6, width: 10 };
        let (w, plane) = (shape.width, shape.plane());
        let dot = |x: usize, y: usize| {
            let mut img = vec![0u8; shape.bytes()];
            for c in 0..3 {
                img[c * plane + y * w + x] = 255;
            }
            img
        };
        let lit = |img: &[u8]| (0..plane).filter(|&i| img[i] == 255).map(|i| (i % w, i / w)).collect::<Vec<_>>();
        let mut img = dot(2, 1);
        rotate(&mut img, shape, 180.0);
        assert_eq!(lit(&img), vec![(7, 4)]);
        let mut img = dot(9, 5);
        translate_x(&mut img, shape, 4.0);
        assert_eq!(lit(&img), vec![(5, 5)]);
        assert_eq!(img[9], FILL, "the uncovered right columns are grey");
        let mut img = dot(9, 5);
        translate_y(&mut img, shape, 2.0);
        assert_eq!(lit(&img), vec![(9, 3)]);
        let mut img = vec![10u8; shape.bytes()];
        img[2 * plane + plane - 1] = 60; // last pixel of the blue plane
        autocontrast(&mut img, shape);
        assert_eq!((img[2 * plane], img[3 * plane - 1]), (0, 255), "the blue plane is stretched whole");
        assert!(img[..2 * plane].iter().all(|&v| v == 10), "flat planes are left alone");
    }

    #[test]
    fn shear_moves_rows_by_their_height() {
        // ShearX(s): output (x, y) reads source (x + s·(y+½) − ½ … ): a vertical line tilts.
        let mut img = solid([0, 0, 0]);
        for y in 0..SIDE {
            for c in 0..3 {
                img[c * PLANE + y * SIDE + 16] = 255;
            }
        }
        shear_x(&mut img, SHAPE, 0.25);
        let brightest_col = |y: usize| (0..SIDE).max_by_key(|&x| img[y * SIDE + x]).unwrap();
        // Row y samples u = x + ½ + 0.25·(y + ½); the line (u ∈ [16, 17)) shows at x ≈ 16 − 0.25·(y+½).
        assert_eq!(brightest_col(0), 16);
        assert_eq!(brightest_col(8), 14);
        assert_eq!(brightest_col(24), 10);
        let mut img = dot(3, 3);
        shear_y(&mut img, SHAPE, 0.0);
        assert_eq!(lit(&img), vec![(3, 3)], "zero shear is the identity");
    }
}
