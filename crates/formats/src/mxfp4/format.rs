//! The MXFP4 block: byte 0 is the E8M0 exponent `e`, bytes 1..17 hold 32 4-bit codes — element
//! `j` in the low nibble of byte `1 + j`, element `j + 16` in the high nibble. A code's value is
//! `E2M1_DOUBLED[code] · 2^(e - 128)`, i.e. the E2M1 value times `2^(e - 127)`.

use super::e8m0::e8m0_to_f32_half;
use crate::block::{check_row, BlockFormat};
use crate::blockwise::{blocks, dequantize_blocks};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::{FormatError, GgmlType};

pub struct Mxfp4;

const QK: usize = 32;

/// E2M1 values doubled (ggml's `kvalues_mxfp4`): codes 0..7 are +0, 0.5, 1, 1.5, 2, 3, 4, 6 and
/// codes 8..15 the same magnitudes negated.
pub const E2M1_DOUBLED: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Midpoints between consecutive doubled magnitudes; a value exactly on one goes to the smaller
/// magnitude (as ggml's first-best search does).
const MIDPOINTS: [f32; 7] = [0.5, 1.5, 2.5, 3.5, 5.0, 7.0, 10.0];

/// The nearest code to `t` (already divided by the half-scale). Zero is always code 0, never the
/// negative zero code 8, matching ggml.
#[inline]
pub(crate) fn nearest_code(t: f32) -> u8 {
    let a = t.abs();
    let m = MIDPOINTS.iter().map(|&p| (a > p) as u8).sum::<u8>();
    if m != 0 && t < 0.0 {
        m | 8
    } else {
        m
    }
}

/// `floor(log2(a))` for finite positive `a`, exact (sub-normals included).
#[inline]
fn floor_log2(a: f32) -> i32 {
    let bits = a.to_bits();
    let exp = (bits >> 23) as i32 & 0xff;
    if exp == 0 {
        let mant = bits & 0x7f_ffff;
        (31 - mant.leading_zeros() as i32) - 149
    } else {
        exp - 127
    }
}

/// The OCP / ggml exponent for a block whose largest magnitude is `amax`: the largest E2M1
/// magnitude (6 = 1.5 · 2²) lands in amax's binade, so `e = floor(log2 amax) − 2 + 127`.
#[inline]
fn natural_exponent(amax: f32) -> i32 {
    if amax > 0.0 && amax.is_finite() {
        floor_log2(amax) - 2 + 127
    } else if amax > 0.0 {
        254
    } else {
        0
    }
}

/// Weighted squared error of coding `x` with half-scale `d`.
#[inline]
fn block_error(x: &[f32], w: Option<&[f32]>, d: f32) -> f64 {
    let mut err = 0f64;
    for (j, &v) in x.iter().enumerate() {
        let q = E2M1_DOUBLED[nearest_code(v / d) as usize] as f32 * d;
        let e = (v - q) as f64;
        err += w.map_or(1.0, |w| w[j] as f64) * e * e;
    }
    err
}

/// Chooses the exponent of one block and writes it with the codes.
///
/// ggml always takes the natural exponent, which clips every |x| in (1.5, 2) · 2^floor(log2 amax)
/// down to 1.5 · 2^…; one step up covers the whole block at twice the step size. Which is better
/// depends on the block, so both (and one step down, which can win when the largest elements carry
/// little importance) are tried and the smallest weighted error kept. Larger exponents never help:
/// their in-range grid points are a subset of `natural + 1`'s. When importance is given, the
/// natural exponent of the largest *weighted* element is also a candidate starting point.
fn quantize_block(x: &[f32], w: Option<&[f32]>, out: &mut [u8]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let hi = natural_exponent(amax);
    let lo = match w {
        Some(w) => {
            let amax_w = x
                .iter()
                .zip(w)
                .filter(|(_, &w)| w > 0.0)
                .fold(0f32, |m, (v, _)| m.max(v.abs()));
            // Bounded so a pathological weight pattern cannot make the search long.
            natural_exponent(amax_w).max(hi - 16)
        }
        None => hi,
    };
    let mut best = (f64::INFINITY, hi.clamp(0, 254));
    for e in (lo - 1)..=(hi + 1) {
        let e = e.clamp(0, 254);
        let err = block_error(x, w, e8m0_to_f32_half(e as u8));
        // Strict: on ties keep the earlier (smaller) exponent, whose grid is finer.
        if err < best.0 {
            best = (err, e);
        }
    }
    let e = best.1 as u8;
    let d = e8m0_to_f32_half(e);
    out[0] = e;
    for j in 0..QK / 2 {
        out[1 + j] = nearest_code(x[j] / d) | nearest_code(x[j + QK / 2] / d) << 4;
    }
}

impl BlockGrid for Mxfp4 {
    fn group(&self) -> usize {
        QK
    }
    fn levels(&self) -> Levels {
        Levels::Mxfp4
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        out[0] = GroupParams {
            scale: e8m0_to_f32_half(b[0]),
            ..Default::default()
        };
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        for j in 0..QK / 2 {
            codes[j] = b[1 + j] & 15;
            codes[j + QK / 2] = b[1 + j] >> 4;
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        for j in 0..QK / 2 {
            b[1 + j] = (codes[j] & 15) | (codes[j + QK / 2] << 4);
        }
    }
    /// The scale is a power of two: it moves down one step once `r` is nearer half than one.
    fn rescale(&self, b: &mut [u8], r: f32) {
        if r < std::f32::consts::FRAC_1_SQRT_2 && b[0] > 0 {
            b[0] -= 1;
        }
    }
}

impl BlockFormat for Mxfp4 {
    fn ty(&self) -> GgmlType {
        GgmlType::MXFP4
    }

    fn quantize_row(
        &self,
        src: &[f32],
        importance: Option<&[f32]>,
        dst: &mut [u8],
    ) -> Result<(), FormatError> {
        check_row(self.ty(), src.len(), dst.len(), importance.map(<[f32]>::len))?;
        blocks(self.ty(), src, importance, dst, |x, w, out| {
            quantize_block(x, w, out);
        });
        Ok(())
    }

    fn grid(&self) -> Option<&'static dyn BlockGrid> {
        Some(&Mxfp4)
    }

    fn dequantize_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
        dequantize_blocks(self.ty(), src, dst, |blk, y| {
            let d = e8m0_to_f32_half(blk[0]);
            let (lo, hi) = y.split_at_mut(QK / 2);
            for ((&q, a), b) in blk[1..].iter().zip(lo).zip(hi) {
                *a = E2M1_DOUBLED[(q & 15) as usize] as f32 * d;
                *b = E2M1_DOUBLED[(q >> 4) as usize] as f32 * d;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{sse, Lcg};

    /// ggml's rule: natural exponent, nearest code by exhaustive search.
    fn reference(x: &[f32]) -> Vec<f32> {
        let mut y = Vec::with_capacity(x.len());
        for blk in x.chunks_exact(QK) {
            let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = e8m0_to_f32_half(natural_exponent(amax) as u8);
            for &v in blk {
                let best = E2M1_DOUBLED
                    .iter()
                    .map(|&k| k as f32 * d)
                    .min_by(|a, b| (a - v).abs().total_cmp(&(b - v).abs()));
                y.push(best.unwrap_or(0.0));
            }
        }
        y
    }

    #[test]
    fn nearest_code_is_exhaustively_nearest() {
        for i in -2600..=2600 {
            let t = i as f32 / 200.0;
            let c = nearest_code(t);
            let err = (E2M1_DOUBLED[c as usize] as f32 - t).abs();
            for k in E2M1_DOUBLED {
                assert!(err <= (k as f32 - t).abs(), "t={t}");
            }
        }
        assert_eq!(nearest_code(-0.25), 0);
        assert_eq!(nearest_code(-5.0), 8 | 4);
        assert_eq!(nearest_code(100.0), 7);
    }

    #[test]
    fn floor_log2_is_exact_including_subnormals() {
        for k in -149..128 {
            let p = (2f64).powi(k) as f32;
            assert_eq!(floor_log2(p), k);
            if k > -149 {
                assert_eq!(floor_log2(f32::from_bits(p.to_bits() - 1)), k - 1);
            }
        }
    }

    #[test]
    fn never_worse_than_the_natural_exponent() {
        let mut rng = Lcg(3);
        let x: Vec<f32> = (0..QK * 200).map(|_| rng.weight()).collect();
        let mut q = vec![0u8; 17 * 200];
        Mxfp4.quantize_row(&x, None, &mut q).unwrap();
        let mut y = vec![0f32; x.len()];
        Mxfp4.dequantize_row(&q, &mut y).unwrap();
        let (ours, theirs) = (sse(&x, &y), sse(&x, &reference(&x)));
        assert!(ours < 0.95 * theirs, "{ours} vs {theirs}");
        for (a, b) in x.chunks(QK).zip(y.chunks(QK)) {
            assert!(sse(a, b) <= sse(a, &reference(a)));
        }
    }

    #[test]
    fn importance_moves_the_exponent() {
        // One huge element with no weight: the scale should fit the rest.
        let mut x = [0.01f32; QK];
        x[5] = 100.0;
        let mut w = [1f32; QK];
        w[5] = 0.0;
        let mut out = [0u8; 17];
        quantize_block(&x, Some(&w), &mut out);
        let mut y = [0f32; QK];
        Mxfp4.dequantize_row(&out, &mut y).unwrap();
        assert!((y[0] - 0.01).abs() < 0.002, "{}", y[0]);
    }

    #[test]
    fn representable_values_round_trip_and_zero_block_is_zero() {
        let mut x = [0f32; QK];
        for (i, v) in x.iter_mut().enumerate() {
            *v = E2M1_DOUBLED[i % 16] as f32 * 0.25;
        }
        let mut out = [0u8; 17];
        Mxfp4.quantize_row(&x, None, &mut out).unwrap();
        let mut y = [0f32; QK];
        Mxfp4.dequantize_row(&out, &mut y).unwrap();
        assert_eq!(x, y);
        Mxfp4.quantize_row(&[0.0; QK], None, &mut out).unwrap();
        assert_eq!(out, [0u8; 17]);
        // Extremes do not panic and stay in the exponent range.
        Mxfp4.quantize_row(&[f32::MAX; QK], None, &mut out).unwrap();
        assert!(out[0] <= 254);
        Mxfp4
            .quantize_row(&[f32::from_bits(1); QK], None, &mut out)
            .unwrap();
        Mxfp4
            .quantize_row(&[f32::INFINITY; QK], None, &mut out)
            .unwrap();
        assert!(Mxfp4.quantize_row(&[0.0; 31], None, &mut out).is_err());
    }
}
