//! Accumulates one input site's statistics over calibration batches: `Σx²`, `Σ|x|` and
//! `max |x|` per column, and optionally the Hessian `XᵀX`.
//!
//! The Hessian is the expensive part (`d²` per token, like a product with a `d × d` matrix), so
//! each batch's `XᵀX` is one f32 matrix product, split over threads by blocks of rows of the
//! result — every element is summed by one task in a fixed order, so the totals do not depend on
//! the thread count — and only its upper triangle is computed. Batches add into f64 totals.

use faer::{Accum, MatMut, MatRef, Par};
use lowbit_quant::InputStats;
use rayon::prelude::*;

/// Rows of the Hessian per parallel task.
const BLOCK: usize = 64;

pub struct StatsBuilder {
    cols: usize,
    tokens: u64,
    sum_sq: Vec<f64>,
    sum_abs: Vec<f64>,
    max_abs: Vec<f64>,
    hessian: Option<Vec<f64>>,
    /// Where a non-finite activation was first seen: (batch, token, column).
    bad: Option<(u64, usize, usize)>,
    batches: u64,
}

impl StatsBuilder {
    pub fn new(cols: usize, with_hessian: bool) -> StatsBuilder {
        StatsBuilder {
            cols,
            tokens: 0,
            sum_sq: vec![0.0; cols],
            sum_abs: vec![0.0; cols],
            max_abs: vec![0.0; cols],
            hessian: with_hessian.then(|| vec![0.0; cols * cols]),
            bad: None,
            batches: 0,
        }
    }

    /// Adds a batch of `x.len() / cols` rows.
    pub fn add(&mut self, x: &[f32]) {
        let d = self.cols;
        let n = x.len() / d;
        if n == 0 {
            return;
        }
        if self.bad.is_none() {
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                self.bad = Some((self.batches, i / d, i % d));
            }
        }
        self.batches += 1;
        self.tokens += n as u64;
        for row in x.chunks_exact(d) {
            for (((s, a), m), &v) in self.sum_sq.iter_mut().zip(&mut self.sum_abs).zip(&mut self.max_abs).zip(row) {
                *s += (v as f64) * (v as f64);
                *a += v.abs() as f64;
                *m = m.max(v.abs() as f64);
            }
        }
        if let Some(h) = &mut self.hessian {
            add_gram(h, x, n, d);
        }
    }

    /// The first non-finite activation seen, as (batch, token, column).
    pub fn non_finite(&self) -> Option<(u64, usize, usize)> {
        self.bad
    }

    pub fn finish(self) -> InputStats {
        let d = self.cols;
        let hessian = self.hessian.map(|mut h| {
            for i in 0..d {
                for j in 0..i {
                    h[i * d + j] = h[j * d + i];
                }
            }
            h
        });
        InputStats {
            cols: d,
            tokens: self.tokens,
            sum_sq: self.sum_sq,
            sum_abs: self.sum_abs,
            max_abs: self.max_abs,
            hessian,
        }
    }
}

/// `h[i][j] += Σ_t x[t][i]·x[t][j]` for `j ≥ i` (upper triangle, row-major `d × d`).
fn add_gram(h: &mut [f64], x: &[f32], n: usize, d: usize) {
    let xm = MatRef::from_row_major_slice(x, n, d);
    h.par_chunks_mut(BLOCK * d).enumerate().for_each(|(b, hrows)| {
        let i0 = b * BLOCK;
        let rows = hrows.len() / d;
        let width = d - i0;
        // (x[:, i0..i0+rows])ᵀ · x[:, i0..]
        let lhs = xm.submatrix(0, i0, n, rows).transpose();
        let rhs = xm.submatrix(0, i0, n, width);
        let mut tmp = vec![0f32; rows * width];
        let dst = MatMut::from_row_major_slice_mut(&mut tmp, rows, width);
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
        for r in 0..rows {
            let row = &mut hrows[r * d..(r + 1) * d];
            for (c, &v) in tmp[r * width..(r + 1) * width].iter().enumerate() {
                row[i0 + c] += v as f64;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_match_a_plain_sum_and_do_not_depend_on_threads() {
        let d = 150;
        let x: Vec<f32> = (0..37 * d).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut b = StatsBuilder::new(d, true);
                b.add(&x[..20 * d]);
                b.add(&x[20 * d..]);
                b.finish()
            })
        };
        let s = run(2);
        assert_eq!(s, run(1));
        assert_eq!(s.tokens, 37);
        let h = s.hessian.as_ref().unwrap();
        for i in [0, 63, 64, 149] {
            for j in [0, 1, 64, 149] {
                let want: f64 = (0..37).map(|t| x[t * d + i] as f64 * x[t * d + j] as f64).sum();
                assert!((h[i * d + j] - want).abs() < 1e-4, "{i} {j}");
            }
            let sq: f64 = (0..37).map(|t| (x[t * d + i] as f64).powi(2)).sum();
            assert!((s.sum_sq[i] - sq).abs() < 1e-9);
        }
    }

    #[test]
    fn a_non_finite_activation_is_located() {
        let mut b = StatsBuilder::new(4, false);
        b.add(&[1.0; 8]);
        b.add(&[1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN, 0.0, 0.0]);
        assert_eq!(b.non_finite(), Some((1, 1, 1)));
    }
}
