//! FP8 storage: E4M3 ("fn" variant: no infinities, max 448, NaN = S.1111.111) and E5M2
//! (IEEE-like: max 57344, ±inf, NaN), plus scaled row quantization.
//!
//! Rounding is to nearest, ties to even. Policy for values the format cannot hold:
//! - finite overflow saturates to ±max (what quantization toolkits do: a scale computed from
//!   amax can push an element a hair past max after rounding, and turning that into inf/NaN would
//!   poison a whole matmul);
//! - ±inf stays ±inf in E5M2 and becomes NaN in E4M3FN, which has no infinity (as ml_dtypes and
//!   PyTorch do): an infinite input is a bug upstream, not something to hide;
//! - NaN stays NaN (sign kept), encoded as S.1111.111 (E4M3) or S.11111.11 (E5M2).
//!
//! Decoding is exact (every fp8 value is an f32) and done by table.

use crate::FormatError;

/// One of the two OCP FP8 encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fp8Format {
    E4M3,
    E5M2,
}

impl Fp8Format {
    const fn man_bits(self) -> u32 {
        match self {
            Fp8Format::E4M3 => 3,
            Fp8Format::E5M2 => 2,
        }
    }
    const fn bias(self) -> i32 {
        match self {
            Fp8Format::E4M3 => 7,
            Fp8Format::E5M2 => 15,
        }
    }
    /// Code of the largest finite magnitude.
    const fn max_code(self) -> u8 {
        match self {
            Fp8Format::E4M3 => 0x7e,
            Fp8Format::E5M2 => 0x7b,
        }
    }
    const fn nan_code(self) -> u8 {
        0x7f
    }

    /// Largest finite value: 448 (E4M3) or 57344 (E5M2).
    pub fn max(self) -> f32 {
        self.decode(self.max_code())
    }

    /// fp8 → f32, exact.
    #[inline]
    pub fn decode(self, code: u8) -> f32 {
        match self {
            Fp8Format::E4M3 => f32::from_bits(E4M3_TABLE[code as usize]),
            Fp8Format::E5M2 => f32::from_bits(E5M2_TABLE[code as usize]),
        }
    }

    /// f32 → fp8 with round-to-nearest-even and the saturation policy of the module docs.
    #[inline]
    pub fn encode(self, x: f32) -> u8 {
        let bits = x.to_bits();
        let sign = ((bits >> 24) & 0x80) as u8;
        let a = f32::from_bits(bits & 0x7fff_ffff);
        if a.is_nan() {
            return sign | self.nan_code();
        }
        if a.is_infinite() {
            return sign
                | match self {
                    Fp8Format::E4M3 => self.nan_code(),
                    Fp8Format::E5M2 => 0x7c,
                };
        }
        if a > self.max() {
            return sign | self.max_code();
        }
        let m = self.man_bits();
        let emin = 1 - self.bias();
        let mag = if a < f32::from_bits(((emin + 127) as u32) << 23) {
            // Sub-normal target: count units of 2^(emin - m). The scaling is by a power of two,
            // so exact, and rounding happens once; a carry into 2^m is the smallest normal code.
            let scale = f32::from_bits(((m as i32 - emin + 127) as u32) << 23);
            (a * scale).round_ties_even() as u32
        } else {
            // Normal: round the f32 mantissa to m bits in the integer domain (a carry correctly
            // bumps the exponent), then re-bias the exponent.
            let shift = 23 - m;
            let b = a.to_bits();
            let r = (b + (1 << (shift - 1)) - 1 + ((b >> shift) & 1)) >> shift;
            r - (((127 - self.bias()) as u32) << m)
        };
        // Rounding up from just below max cannot exceed max here (a <= max), so no re-check.
        sign | mag as u8
    }
}

/// f32 bit patterns of all 256 codes, built at compile time from the field layout.
const fn build_table(fmt: Fp8Format) -> [u32; 256] {
    let m = fmt.man_bits();
    let e_bits = 7 - m;
    let bias = fmt.bias();
    let mut t = [0u32; 256];
    let mut c = 0;
    while c < 256 {
        let sign = ((c as u32) & 0x80) << 24;
        let exp = ((c as u32) >> m) & ((1 << e_bits) - 1);
        let man = (c as u32) & ((1 << m) - 1);
        let exp_all_ones = exp == (1 << e_bits) - 1;
        let mag = match fmt {
            Fp8Format::E4M3 if exp_all_ones && man == (1 << m) - 1 => 0x7fc0_0000,
            Fp8Format::E5M2 if exp_all_ones && man == 0 => 0x7f80_0000,
            Fp8Format::E5M2 if exp_all_ones => 0x7fc0_0000,
            _ if exp == 0 && man == 0 => 0,
            _ if exp == 0 => {
                // man · 2^(1 - bias - m): normalise around the leading bit p.
                let p = 31 - man.leading_zeros();
                let e32 = (p as i32 + 1 - bias - m as i32 + 127) as u32;
                (e32 << 23) | ((man ^ (1 << p)) << (23 - p))
            }
            _ => (((exp as i32 - bias + 127) as u32) << 23) | (man << (23 - m)),
        };
        t[c] = sign | mag;
        c += 1;
    }
    t
}

static E4M3_TABLE: [u32; 256] = build_table(Fp8Format::E4M3);
static E5M2_TABLE: [u32; 256] = build_table(Fp8Format::E5M2);

/// Where the scale of a scaled fp8 tensor applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fp8Scaling {
    PerTensor,
    PerRow,
}

/// A scaled fp8 tensor: `x ≈ decode(codes[i]) · scales[group]`, row-major codes.
#[derive(Clone, Debug, PartialEq)]
pub struct Fp8Tensor {
    pub format: Fp8Format,
    pub scaling: Fp8Scaling,
    pub rows: usize,
    pub cols: usize,
    pub codes: Vec<u8>,
    /// One scale (PerTensor) or one per row. An all-zero group gets scale 1 so the scale is always
    /// a positive finite number (consumers divide by it).
    pub scales: Vec<f32>,
}

/// Quantizes a row-major `rows × cols` matrix with scale `amax / format.max()`, so the largest
/// element lands on the largest code. Non-finite input is rejected: it would make the scale
/// meaningless for the whole group.
pub fn quantize(
    src: &[f32],
    rows: usize,
    cols: usize,
    format: Fp8Format,
    scaling: Fp8Scaling,
) -> Result<Fp8Tensor, FormatError> {
    if rows.checked_mul(cols) != Some(src.len()) {
        return Err(FormatError::InvalidParameter(format!(
            "fp8: {} values for a {rows}x{cols} matrix",
            src.len()
        )));
    }
    if let Some(i) = src.iter().position(|v| !v.is_finite()) {
        return Err(FormatError::InvalidParameter(format!(
            "fp8: non-finite value at index {i}"
        )));
    }
    let group_len = match scaling {
        Fp8Scaling::PerTensor => src.len().max(1),
        Fp8Scaling::PerRow => cols.max(1),
    };
    let mut codes = vec![0u8; src.len()];
    let mut scales = Vec::with_capacity(src.len() / group_len);
    for (x, q) in src.chunks(group_len).zip(codes.chunks_mut(group_len)) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if amax > 0.0 { amax / format.max() } else { 1.0 };
        for (c, &v) in q.iter_mut().zip(x) {
            *c = format.encode(v / scale);
        }
        scales.push(scale);
    }
    if scaling == Fp8Scaling::PerTensor && scales.is_empty() {
        scales.push(1.0);
    }
    Ok(Fp8Tensor {
        format,
        scaling,
        rows,
        cols,
        codes,
        scales,
    })
}

impl Fp8Tensor {
    /// Dequantizes into `dst` (`rows · cols` values).
    pub fn dequantize(&self, dst: &mut [f32]) -> Result<(), FormatError> {
        let n = self.rows * self.cols;
        let groups = match self.scaling {
            Fp8Scaling::PerTensor => 1,
            Fp8Scaling::PerRow => self.rows,
        };
        if dst.len() != n || self.codes.len() != n || self.scales.len() != groups {
            return Err(FormatError::InvalidParameter(format!(
                "fp8: {}x{} tensor with {} codes and {} scales cannot fill {} values",
                self.rows,
                self.cols,
                self.codes.len(),
                self.scales.len(),
                dst.len()
            )));
        }
        let group_len = if groups == 1 {
            n.max(1)
        } else {
            self.cols.max(1)
        };
        for ((q, y), &s) in self
            .codes
            .chunks(group_len)
            .zip(dst.chunks_mut(group_len))
            .zip(&self.scales)
        {
            for (out, &c) in y.iter_mut().zip(q) {
                *out = self.format.decode(c) * s;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Fp8Format::*;

    #[test]
    fn decode_matches_the_field_formula() {
        for fmt in [E4M3, E5M2] {
            let (m, bias) = (fmt.man_bits() as i32, fmt.bias());
            for c in 0..=255u8 {
                let v = fmt.decode(c);
                let exp = ((c & 0x7f) >> m) as i32;
                let man = (c as i32) & ((1 << m) - 1);
                let special = match fmt {
                    E4M3 => exp == 15 && man == 7,
                    E5M2 => exp == 31,
                };
                if special {
                    assert!(
                        v.is_nan() || (fmt == E5M2 && man == 0 && v.is_infinite()),
                        "{fmt:?} {c:#x}"
                    );
                    continue;
                }
                let mag = if exp == 0 {
                    man as f64 * 2f64.powi(1 - bias - m)
                } else {
                    (1.0 + man as f64 / (1 << m) as f64) * 2f64.powi(exp - bias)
                };
                let want = if c & 0x80 != 0 { -mag } else { mag };
                assert_eq!(v as f64, want, "{fmt:?} {c:#x}");
                assert_eq!(v.is_sign_negative(), c & 0x80 != 0);
            }
        }
        assert_eq!(E4M3.max(), 448.0);
        assert_eq!(E5M2.max(), 57344.0);
        assert_eq!(E4M3.decode(1), 2f32.powi(-9));
        assert_eq!(E5M2.decode(1), 2f32.powi(-16));
    }

    #[test]
    fn decode_then_encode_is_identity_for_all_non_nan_codes() {
        for fmt in [E4M3, E5M2] {
            for c in 0..=255u8 {
                let v = fmt.decode(c);
                if v.is_nan() {
                    assert_eq!(fmt.encode(v) & 0x7f, 0x7f);
                } else {
                    assert_eq!(fmt.encode(v), c, "{fmt:?} {c:#x} ({v})");
                }
            }
        }
    }

    #[test]
    fn midpoints_round_to_even_and_neighbours_to_nearest() {
        for fmt in [E4M3, E5M2] {
            // Positive finite codes in increasing order; every adjacent pair has a midpoint.
            let max = fmt.max_code();
            for c in 0..max {
                let (lo, hi) = (fmt.decode(c), fmt.decode(c + 1));
                let mid = ((lo as f64 + hi as f64) / 2.0) as f32; // exact: fp8 has few bits
                let even = if c % 2 == 0 { c } else { c + 1 };
                assert_eq!(fmt.encode(mid), even, "{fmt:?} between {lo} and {hi}");
                assert_eq!(fmt.encode(-mid), 0x80 | even);
                let below = f32::from_bits(mid.to_bits() - 1);
                let above = f32::from_bits(mid.to_bits() + 1);
                assert_eq!(fmt.encode(below), c, "{fmt:?} below mid {mid}");
                assert_eq!(fmt.encode(above), c + 1, "{fmt:?} above mid {mid}");
            }
        }
    }

    #[test]
    fn overflow_saturates_and_specials_follow_the_policy() {
        assert_eq!(E4M3.encode(449.0), 0x7e);
        assert_eq!(E4M3.encode(464.0), 0x7e); // would round to the NaN code without saturation
        assert_eq!(E4M3.encode(-1e30), 0xfe);
        assert_eq!(E5M2.encode(61440.0), 0x7b);
        assert_eq!(E5M2.encode(f32::MAX), 0x7b);
        assert_eq!(E5M2.encode(f32::INFINITY), 0x7c);
        assert_eq!(E5M2.encode(f32::NEG_INFINITY), 0xfc);
        assert_eq!(E4M3.encode(f32::INFINITY), 0x7f);
        assert_eq!(E4M3.encode(-f32::NAN), 0xff);
        assert_eq!(E4M3.encode(1e-30), 0);
        assert_eq!(E4M3.encode(-1e-30), 0x80);
        // Half the smallest sub-normal is a tie with zero: goes to (even) zero; just above to 1.
        assert_eq!(E4M3.encode(2f32.powi(-10)), 0);
        assert_eq!(E4M3.encode(2f32.powi(-10) * 1.0001), 1);
    }

    #[test]
    fn scaled_quantization_round_trips_within_half_an_ulp() {
        let mut s = 9u64;
        let x: Vec<f32> = (0..6 * 50)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / 16777216.0 - 0.5) * (1 + i / 50) as f32
            })
            .collect();
        for fmt in [E4M3, E5M2] {
            for scaling in [Fp8Scaling::PerTensor, Fp8Scaling::PerRow] {
                let t = quantize(&x, 6, 50, fmt, scaling).unwrap();
                assert_eq!(
                    t.scales.len(),
                    if scaling == Fp8Scaling::PerRow { 6 } else { 1 }
                );
                let mut y = vec![0f32; x.len()];
                t.dequantize(&mut y).unwrap();
                let rel = 2f32.powi(-(fmt.man_bits() as i32) - 1) * 1.0001;
                for (i, (&a, &b)) in x.iter().zip(&y).enumerate() {
                    let s = t.scales[if scaling == Fp8Scaling::PerRow {
                        i / 50
                    } else {
                        0
                    }];
                    // Normal range: relative error ≤ 2^-(m+1); below it, absolute ≤ half a sub-normal step.
                    let tiny = fmt.decode(1) * s;
                    assert!((a - b).abs() <= rel * a.abs() + tiny, "{fmt:?} {a} {b}");
                }
                // The largest element maps to the largest code.
                assert!(t.codes.iter().any(|&c| c & 0x7f == fmt.max_code()));
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(quantize(&[1.0; 5], 2, 3, E4M3, Fp8Scaling::PerRow).is_err());
        assert!(quantize(&[1.0, f32::NAN], 1, 2, E4M3, Fp8Scaling::PerRow).is_err());
        let t = quantize(&[0.0; 4], 2, 2, E5M2, Fp8Scaling::PerRow).unwrap();
        assert_eq!(t.scales, vec![1.0, 1.0]);
        assert!(t.dequantize(&mut [0.0; 3]).is_err());
        let empty = quantize(&[], 0, 0, E4M3, Fp8Scaling::PerTensor).unwrap();
        assert!(empty.dequantize(&mut []).is_ok());
    }
}
