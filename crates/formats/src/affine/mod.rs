//! Generic affine integer quantization, `x ≈ (q − zero) · scale` with 2..=8-bit codes — the
//! representation GPTQ, AWQ and plain round-to-nearest export to (safetensors checkpoints rather
//! than GGUF blocks), so every piece is exposed separately: the per-element mapping
//! ([`quantize_value`], [`dequantize_value`]), the range → parameters rule
//! ([`params_for_range`]), and the bit packing ([`pack`]).
//!
//! Tensors are row-major `rows × cols` with a row per output channel. Parameters are chosen per
//! tensor, per row, or per group of `g` consecutive columns within a row; `cols` must be a
//! multiple of `g` (a short last group would need its own bookkeeping in every consumer, so it
//! is rejected instead). Parameters are stored row-major: `scales[r · groups_per_row + c / g]`.

pub mod pack;
mod params;

pub use params::{dequantize_value, params_for_range, qmax, quantize_value, symmetric_zero};

use crate::FormatError;
use pack::{pack_codes, packed_len, unpack_codes};

/// Which elements share one (scale, zero point).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    PerTensor,
    /// One per output channel (row).
    PerRow,
    /// One per `g` consecutive columns of a row; `g` must divide `cols`.
    PerGroup(usize),
}

/// How the quantized range is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clipping {
    /// The full `[min, max]` of the group (0 always included): nothing clips.
    MinMax,
    /// Shrink `[min, max]` by factors `1, 1 − δ, …, min_shrink` (`steps + 1` candidates, δ =
    /// `(1 − min_shrink) / steps`) and keep the one with the least (importance-)weighted squared
    /// error: clipping a few outliers usually buys a finer step for everything else.
    Mse { min_shrink: f32, steps: u32 },
}

impl Clipping {
    /// The usual search: shrink factors 0.5..=1.0 in steps of 0.025.
    pub const MSE: Clipping = Clipping::Mse {
        min_shrink: 0.5,
        steps: 20,
    };
}

/// A complete affine scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineScheme {
    /// Code width, 2..=8.
    pub bits: u8,
    /// Zero point fixed at `2^(bits−1)` (signed codes) instead of chosen per group.
    pub symmetric: bool,
    pub granularity: Granularity,
    pub clipping: Clipping,
}

impl AffineScheme {
    /// A scheme with min/max ranges.
    pub fn new(bits: u8, symmetric: bool, granularity: Granularity) -> Self {
        Self {
            bits,
            symmetric,
            granularity,
            clipping: Clipping::MinMax,
        }
    }

    pub fn with_clipping(self, clipping: Clipping) -> Self {
        Self { clipping, ..self }
    }

    /// Checks the scheme against a `rows × cols` tensor; returns (groups per row, group length).
    fn layout(&self, rows: usize, cols: usize) -> Result<(usize, usize), FormatError> {
        let bad = |m: String| Err(FormatError::InvalidParameter(format!("affine: {m}")));
        if !(2..=8).contains(&self.bits) {
            return bad(format!("{} bits (2..=8 supported)", self.bits));
        }
        if let Clipping::Mse { min_shrink, steps } = self.clipping {
            if !(min_shrink > 0.0 && min_shrink <= 1.0 && (1..=1000).contains(&steps)) {
                return bad(format!(
                    "clipping search min_shrink {min_shrink}, steps {steps}"
                ));
            }
        }
        match self.granularity {
            Granularity::PerTensor => Ok((1, cols)),
            Granularity::PerRow => Ok((1, cols)),
            Granularity::PerGroup(g) if g > 0 && cols % g == 0 => Ok((cols / g, g)),
            Granularity::PerGroup(g) => {
                bad(format!("group size {g} does not divide a row of {cols}"))
            }
        }
        .and_then(|l| {
            if rows.checked_mul(cols).is_some() {
                Ok(l)
            } else {
                bad(format!("{rows}x{cols} overflows"))
            }
        })
    }
}

/// An affine-quantized tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct AffineQuantized {
    pub scheme: AffineScheme,
    pub rows: usize,
    pub cols: usize,
    /// `rows · cols` codes, row-major, packed as [`pack`] describes (`bits` bits each, LSB first,
    /// contiguous across bytes and rows).
    pub codes: Vec<u8>,
    /// One per group, row-major (one in total for per-tensor).
    pub scales: Vec<f32>,
    /// One per group, parallel to `scales` (all `2^(bits−1)` for symmetric schemes).
    pub zero_points: Vec<i32>,
}

/// A rectangle of elements sharing parameters.
#[derive(Clone, Copy)]
struct Group {
    rows: (usize, usize),
    cols: (usize, usize),
}

fn groups(rows: usize, cols: usize, g: Granularity) -> impl Iterator<Item = Group> {
    let (per_row, len, whole) = match g {
        Granularity::PerTensor => (1, cols, true),
        Granularity::PerRow => (1, cols, false),
        Granularity::PerGroup(len) => (cols / len.max(1), len, false),
    };
    let n = if whole { 1 } else { rows * per_row };
    (0..n).map(move |i| {
        if whole {
            Group {
                rows: (0, rows),
                cols: (0, cols),
            }
        } else {
            let (r, k) = (i / per_row, i % per_row);
            Group {
                rows: (r, r + 1),
                cols: (k * len, (k + 1) * len),
            }
        }
    })
}

/// Weighted squared error of coding group `grp` of `x` with (scale, zero).
fn group_error(
    x: &[f32],
    cols: usize,
    grp: Group,
    w: Option<&[f32]>,
    s: f32,
    z: i32,
    bits: u8,
) -> f64 {
    let mut err = 0f64;
    for r in grp.rows.0..grp.rows.1 {
        let row = &x[r * cols + grp.cols.0..r * cols + grp.cols.1];
        for (j, &v) in row.iter().enumerate() {
            let e = (v - dequantize_value(quantize_value(v, s, z, bits), s, z)) as f64;
            err += w.map_or(1.0, |w| w[grp.cols.0 + j] as f64) * e * e;
        }
    }
    err
}

/// Quantizes a row-major `rows × cols` tensor. `importance`, when given, has one non-negative
/// weight per column (an imatrix / activation statistic) and steers the clipping search.
pub fn quantize(
    src: &[f32],
    rows: usize,
    cols: usize,
    scheme: &AffineScheme,
    importance: Option<&[f32]>,
) -> Result<AffineQuantized, FormatError> {
    let (groups_per_row, _) = scheme.layout(rows, cols)?;
    let bad = |m: String| Err(FormatError::InvalidParameter(format!("affine: {m}")));
    if src.len() != rows * cols {
        return bad(format!("{} values for a {rows}x{cols} tensor", src.len()));
    }
    if let Some(w) = importance {
        if w.len() != cols {
            return Err(FormatError::ImportanceLength {
                expected: cols,
                got: w.len(),
            });
        }
        if let Some(v) = w.iter().find(|v| !(**v >= 0.0 && v.is_finite())) {
            return bad(format!(
                "importance weight {v} is not a non-negative finite number"
            ));
        }
    }
    if let Some(i) = src.iter().position(|v| !v.is_finite()) {
        return bad(format!("non-finite value at index {i}"));
    }

    let bits = scheme.bits;
    let n_groups = if scheme.granularity == Granularity::PerTensor {
        1
    } else {
        rows * groups_per_row
    };
    let mut scales = Vec::with_capacity(n_groups);
    let mut zero_points = Vec::with_capacity(n_groups);
    let mut codes = vec![0u8; src.len()];
    for grp in groups(rows, cols, scheme.granularity) {
        let (mut lo, mut hi) = (0f32, 0f32);
        for r in grp.rows.0..grp.rows.1 {
            for &v in &src[r * cols + grp.cols.0..r * cols + grp.cols.1] {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let (mut s, mut z) = params_for_range(lo, hi, bits, scheme.symmetric);
        if let Clipping::Mse { min_shrink, steps } = scheme.clipping {
            let mut best = group_error(src, cols, grp, importance, s, z, bits);
            for k in 1..=steps {
                let p = 1.0 - k as f32 * (1.0 - min_shrink) / steps as f32;
                let (cs, cz) = params_for_range(p * lo, p * hi, bits, scheme.symmetric);
                let err = group_error(src, cols, grp, importance, cs, cz, bits);
                if err < best {
                    (best, s, z) = (err, cs, cz);
                }
            }
        }
        for r in grp.rows.0..grp.rows.1 {
            let span = r * cols + grp.cols.0..r * cols + grp.cols.1;
            for (c, &v) in codes[span.clone()].iter_mut().zip(&src[span]) {
                *c = quantize_value(v, s, z, bits);
            }
        }
        scales.push(s);
        zero_points.push(z);
    }
    let mut packed = vec![0u8; packed_len(codes.len(), bits)];
    pack_codes(&codes, bits, &mut packed)?;
    Ok(AffineQuantized {
        scheme: *scheme,
        rows,
        cols,
        codes: packed,
        scales,
        zero_points,
    })
}

/// Dequantizes into `dst` (`rows · cols` values).
pub fn dequantize(q: &AffineQuantized, dst: &mut [f32]) -> Result<(), FormatError> {
    let (groups_per_row, _) = q.scheme.layout(q.rows, q.cols)?;
    let n = q.rows * q.cols;
    let n_groups = if q.scheme.granularity == Granularity::PerTensor {
        1
    } else {
        q.rows * groups_per_row
    };
    if dst.len() != n || q.scales.len() != n_groups || q.zero_points.len() != n_groups {
        return Err(FormatError::InvalidParameter(format!(
            "affine: {}x{} tensor with {} scales / {} zero points (need {n_groups}) cannot fill {} values",
            q.rows,
            q.cols,
            q.scales.len(),
            q.zero_points.len(),
            dst.len()
        )));
    }
    let mut codes = vec![0u8; n];
    unpack_codes(&q.codes, q.scheme.bits, &mut codes)?;
    for ((grp, &s), &z) in groups(q.rows, q.cols, q.scheme.granularity)
        .zip(&q.scales)
        .zip(&q.zero_points)
    {
        for r in grp.rows.0..grp.rows.1 {
            let span = r * q.cols + grp.cols.0..r * q.cols + grp.cols.1;
            for (y, &c) in dst[span.clone()].iter_mut().zip(&codes[span]) {
                *y = dequantize_value(c, s, z);
            }
        }
    }
    Ok(())
}

impl AffineQuantized {
    pub fn dequantize(&self, dst: &mut [f32]) -> Result<(), FormatError> {
        dequantize(self, dst)
    }

    /// The codes, unpacked to one byte each (row-major).
    pub fn unpacked_codes(&self) -> Result<Vec<u8>, FormatError> {
        let mut c = vec![0u8; self.rows * self.cols];
        unpack_codes(&self.codes, self.scheme.bits, &mut c)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{sse, Lcg};

    fn data(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = Lcg(seed);
        (0..rows * cols)
            .map(|i| rng.weight() * (1 + i / cols) as f32 + 0.1 * (i % 3) as f32)
            .collect()
    }

    fn round_trip(
        x: &[f32],
        rows: usize,
        cols: usize,
        s: &AffineScheme,
        w: Option<&[f32]>,
    ) -> (AffineQuantized, Vec<f32>) {
        let q = quantize(x, rows, cols, s, w).unwrap();
        let mut y = vec![0f32; x.len()];
        dequantize(&q, &mut y).unwrap();
        (q, y)
    }

    #[test]
    fn every_scheme_round_trips_within_half_a_step() {
        let (rows, cols) = (5, 48);
        let x = data(rows, cols, 1);
        for bits in 2..=8u8 {
            for symmetric in [false, true] {
                for g in [
                    Granularity::PerTensor,
                    Granularity::PerRow,
                    Granularity::PerGroup(12),
                    Granularity::PerGroup(48),
                ] {
                    let s = AffineScheme::new(bits, symmetric, g);
                    let (q, y) = round_trip(&x, rows, cols, &s, None);
                    let groups_per_row = match g {
                        Granularity::PerGroup(len) => cols / len,
                        _ => 1,
                    };
                    let expect = if g == Granularity::PerTensor {
                        1
                    } else {
                        rows * groups_per_row
                    };
                    assert_eq!((q.scales.len(), q.zero_points.len()), (expect, expect));
                    assert_eq!(q.codes.len(), packed_len(rows * cols, bits));
                    for (i, (&a, &b)) in x.iter().zip(&y).enumerate() {
                        let gi = if g == Granularity::PerTensor {
                            0
                        } else {
                            (i / cols) * groups_per_row + (i % cols) * groups_per_row / cols
                        };
                        assert!(
                            (a - b).abs() <= 0.5 * q.scales[gi] * 1.0001,
                            "{s:?} {i}: {a} {b}"
                        );
                        if symmetric {
                            assert_eq!(q.zero_points[gi], 1 << (bits - 1));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn finer_granularity_and_more_bits_reduce_error() {
        let (rows, cols) = (8, 64);
        let x = data(rows, cols, 2);
        let err = |bits, g| {
            sse(
                &x,
                &round_trip(&x, rows, cols, &AffineScheme::new(bits, false, g), None).1,
            )
        };
        assert!(err(4, Granularity::PerRow) < err(4, Granularity::PerTensor));
        assert!(err(4, Granularity::PerGroup(16)) < err(4, Granularity::PerRow));
        assert!(err(5, Granularity::PerGroup(16)) < err(4, Granularity::PerGroup(16)));
    }

    #[test]
    fn mse_clipping_never_loses_and_usually_wins() {
        let (rows, cols) = (16, 64);
        let x = data(rows, cols, 3);
        for symmetric in [false, true] {
            let base = AffineScheme::new(3, symmetric, Granularity::PerGroup(32));
            let mm = sse(&x, &round_trip(&x, rows, cols, &base, None).1);
            let clipped = sse(
                &x,
                &round_trip(&x, rows, cols, &base.with_clipping(Clipping::MSE), None).1,
            );
            assert!(clipped < 0.95 * mm, "{symmetric}: {clipped} vs {mm}");
        }
    }

    #[test]
    fn importance_steers_the_clipping_search() {
        // Column 0 holds a big outlier with no importance: the search should clip it away.
        let (rows, cols) = (4, 32);
        let mut x = data(rows, cols, 4);
        for r in 0..rows {
            x[r * cols] = 50.0;
        }
        let mut w = vec![1f32; cols];
        w[0] = 0.0;
        let s = AffineScheme::new(4, false, Granularity::PerRow).with_clipping(Clipping::MSE);
        let weighted = |y: &[f32]| -> f64 {
            x.iter()
                .zip(y)
                .enumerate()
                .map(|(i, (&a, &b))| w[i % cols] as f64 * ((a - b) as f64).powi(2))
                .sum()
        };
        let (_, with) = round_trip(&x, rows, cols, &s, Some(&w));
        let (_, without) = round_trip(&x, rows, cols, &s, None);
        assert!(weighted(&with) < 0.5 * weighted(&without));
    }

    #[test]
    fn constant_and_zero_tensors_are_exact() {
        let x = vec![0f32; 24];
        let (_, y) = round_trip(
            &x,
            2,
            12,
            &AffineScheme::new(4, false, Granularity::PerRow),
            None,
        );
        assert_eq!(x, y);
        let x = vec![-0.75f32; 24];
        for symmetric in [false, true] {
            let (_, y) = round_trip(
                &x,
                2,
                12,
                &AffineScheme::new(2, symmetric, Granularity::PerGroup(6)),
                None,
            );
            assert_eq!(x, y);
        }
    }

    #[test]
    fn unpacked_codes_match_the_per_element_helpers() {
        let x = data(3, 21, 5);
        let s = AffineScheme::new(3, false, Granularity::PerGroup(7));
        let q = quantize(&x, 3, 21, &s, None).unwrap();
        let codes = q.unpacked_codes().unwrap();
        for (i, (&v, &c)) in x.iter().zip(&codes).enumerate() {
            let g = i / 7;
            assert_eq!(quantize_value(v, q.scales[g], q.zero_points[g], 3), c);
        }
    }

    #[test]
    fn invalid_input_is_an_error() {
        let x = vec![1f32; 12];
        let s = AffineScheme::new(4, false, Granularity::PerRow);
        assert!(quantize(&x, 3, 5, &s, None).is_err());
        assert!(quantize(
            &x,
            3,
            4,
            &AffineScheme::new(1, false, Granularity::PerRow),
            None
        )
        .is_err());
        assert!(quantize(
            &x,
            3,
            4,
            &AffineScheme::new(9, false, Granularity::PerRow),
            None
        )
        .is_err());
        assert!(quantize(
            &x,
            3,
            4,
            &AffineScheme::new(4, false, Granularity::PerGroup(3)),
            None
        )
        .is_err());
        assert!(quantize(
            &x,
            3,
            4,
            &AffineScheme::new(4, false, Granularity::PerGroup(0)),
            None
        )
        .is_err());
        assert!(quantize(
            &x,
            3,
            4,
            &s.with_clipping(Clipping::Mse {
                min_shrink: 0.0,
                steps: 4
            }),
            None
        )
        .is_err());
        assert!(matches!(
            quantize(&x, 3, 4, &s, Some(&[1.0; 3])),
            Err(FormatError::ImportanceLength { .. })
        ));
        assert!(quantize(&x, 3, 4, &s, Some(&[1.0, -1.0, 1.0, 1.0])).is_err());
        let mut bad = x.clone();
        bad[7] = f32::INFINITY;
        assert!(quantize(&bad, 3, 4, &s, None).is_err());
        let mut q = quantize(&x, 3, 4, &s, None).unwrap();
        assert!(dequantize(&q, &mut [0.0; 11]).is_err());
        q.scales.pop();
        assert!(dequantize(&q, &mut [0.0; 12]).is_err());
        q.scales.push(1.0);
        q.codes.pop();
        assert!(dequantize(&q, &mut [0.0; 12]).is_err());
        assert!(quantize(&[], 0, 8, &s, None).unwrap().scales.is_empty());
    }
}
