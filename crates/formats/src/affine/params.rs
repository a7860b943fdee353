//! Per-element affine mapping and the choice of (scale, zero point) for one group.
//!
//! Codes are always unsigned, `0..=2^b − 1`; `x ≈ (code − zero) · scale`. A symmetric scheme is
//! the same with the zero point fixed at `2^(b−1)`, i.e. the signed value `code − 2^(b−1)` spans
//! `[−2^(b−1), 2^(b−1) − 1]`; keeping one representation lets packing and kernels ignore the
//! difference.

/// The largest code for `bits` bits.
#[inline]
pub fn qmax(bits: u8) -> i32 {
    (1i32 << bits) - 1
}

/// The fixed zero point of symmetric schemes.
#[inline]
pub fn symmetric_zero(bits: u8) -> i32 {
    1i32 << (bits - 1)
}

/// `clamp(round(x / scale) + zero, 0, 2^bits − 1)`, rounding half to even like PyTorch (and so
/// GPTQ/AWQ reference code). A zero scale (an all-zero group) maps everything to the zero point.
#[inline]
pub fn quantize_value(x: f32, scale: f32, zero: i32, bits: u8) -> u8 {
    let q = if scale != 0.0 {
        (x / scale).round_ties_even() + zero as f32
    } else {
        zero as f32
    };
    q.clamp(0.0, qmax(bits) as f32) as u8
}

/// `(code − zero) · scale`.
#[inline]
pub fn dequantize_value(code: u8, scale: f32, zero: i32) -> f32 {
    (code as i32 - zero) as f32 * scale
}

/// The (scale, zero) that maps the interval `[lo, hi]` (with `lo ≤ 0 ≤ hi`) onto the code range.
///
/// Asymmetric: `scale = (hi − lo) / qmax`, zero = the code nearest to where 0 falls, so 0 is
/// exactly representable (padding and ReLU zeros stay exact). Symmetric: the smallest scale that
/// fits both ends without clipping, `max(−lo / 2^(b−1), hi / (2^(b−1) − 1))` — using the extra
/// negative code when the negative side is the larger one.
pub fn params_for_range(lo: f32, hi: f32, bits: u8, symmetric: bool) -> (f32, i32) {
    if symmetric {
        let z = symmetric_zero(bits);
        let scale = (-lo / z as f32).max(hi / (z - 1) as f32);
        (scale, z)
    } else {
        let scale = (hi - lo) / qmax(bits) as f32;
        if scale > 0.0 {
            let zero = (-lo / scale)
                .round_ties_even()
                .clamp(0.0, qmax(bits) as f32) as i32;
            (scale, zero)
        } else {
            (0.0, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_for_every_width() {
        for bits in 2..=8u8 {
            for symmetric in [false, true] {
                let (scale, zero) = params_for_range(-1.3, 2.1, bits, symmetric);
                for code in 0..=qmax(bits) as u8 {
                    let v = dequantize_value(code, scale, zero);
                    assert_eq!(quantize_value(v, scale, zero, bits), code);
                }
            }
        }
    }

    #[test]
    fn ranges_are_covered_without_clipping() {
        for bits in 2..=8u8 {
            for (lo, hi) in [
                (-1.0f32, 3.0f32),
                (-3.0, 1.0),
                (0.0, 2.0),
                (-2.0, 0.0),
                (-1.0, 1.0),
            ] {
                for symmetric in [false, true] {
                    let (s, z) = params_for_range(lo, hi, bits, symmetric);
                    for x in [lo, hi, 0.0] {
                        let back = dequantize_value(quantize_value(x, s, z, bits), s, z);
                        assert!(
                            (back - x).abs() <= 0.5001 * s,
                            "{bits} {symmetric} {lo} {hi} {x}"
                        );
                    }
                    assert_eq!(dequantize_value(quantize_value(0.0, s, z, bits), s, z), 0.0);
                }
            }
        }
        // Symmetric 4-bit: the negative end may use code 0 (value −8·s).
        let (s, z) = params_for_range(-8.0, 1.0, 4, true);
        assert_eq!((s, z), (1.0, 8));
        assert_eq!(quantize_value(-8.0, s, z, 4), 0);
        assert_eq!(quantize_value(100.0, s, z, 4), 15);
    }

    #[test]
    fn ties_go_to_even_and_zero_scale_is_safe() {
        assert_eq!(quantize_value(2.5, 1.0, 0, 8), 2);
        assert_eq!(quantize_value(3.5, 1.0, 0, 8), 4);
        assert_eq!(quantize_value(5.0, 0.0, 3, 4), 3);
        assert_eq!(params_for_range(0.0, 0.0, 4, false), (0.0, 0));
        assert_eq!(params_for_range(0.0, 0.0, 4, true).0, 0.0);
    }
}
