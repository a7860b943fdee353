//! The linear algebra the calibrated methods share: GPTQ's factor of the inverse Hessian and the
//! Hessian-weighted output error `Σ_rows e·H·eᵀ` that GPTQ and AWQ choose by. Factorisations run
//! in f64 on faer, sequentially, so results do not depend on the thread count; the big products
//! run in f32 over row chunks in parallel (each chunk's sums in a fixed order).

use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;

/// `U` with `H⁻¹ = UᵀU` (upper triangular, row-major `n × n`, f32 for the sweep), for a damped
/// Hessian, and what it took to get it.
#[derive(Clone, Debug)]
pub struct InverseFactor {
    pub n: usize,
    pub u: Vec<f32>,
    /// Damping actually added, relative to the mean diagonal.
    pub damping: f64,
    /// Times the damping was raised because the Cholesky factorisation failed.
    pub retries: u32,
    /// Columns whose input was always zero (their weights are zeroed: nothing reaches them).
    pub dead: Vec<usize>,
}

/// The most times damping is multiplied by ten before giving up.
const MAX_RETRIES: u32 = 6;

/// Factors `(H + λ·mean(diag H)·I)⁻¹` for `h` (row-major `n × n`, symmetric), with dead columns
/// (zero diagonal) set to 1 first as GPTQ does. When Cholesky fails (an indefinite or badly
/// conditioned Hessian) λ is multiplied by ten and the factorisation retried.
pub fn inverse_factor(h: &[f64], n: usize, rel_damp: f64) -> Result<InverseFactor, String> {
    assert_eq!(h.len(), n * n);
    let is_dead: Vec<bool> = (0..n).map(|i| !(h[i * n + i] > 0.0)).collect();
    let dead: Vec<usize> = (0..n).filter(|&i| is_dead[i]).collect();
    let mean_diag = (0..n)
        .filter(|&i| !is_dead[i])
        .map(|i| h[i * n + i])
        .sum::<f64>()
        / (n - dead.len()).max(1) as f64;
    let mean_diag = if mean_diag > 0.0 { mean_diag } else { 1.0 };
    let mut damping = rel_damp;
    for retries in 0..=MAX_RETRIES {
        let lambda = damping * mean_diag;
        // The damped Hessian with rows and columns reversed (J·H·J): if J·H·J = L·Lᵀ then
        // H⁻¹ = (J·L⁻¹·J)ᵀ·(J·L⁻¹·J), so U = J·L⁻¹·J is H⁻¹'s upper Cholesky factor — one
        // factorisation and one triangular inverse instead of an inverse and a second factor.
        let m = Mat::<f64>::from_fn(n, n, |i, j| {
            let (i, j) = (n - 1 - i, n - 1 - j);
            if i == j {
                if is_dead[i] {
                    1.0 + lambda
                } else {
                    h[i * n + j] + lambda
                }
            } else if is_dead[i] || is_dead[j] {
                0.0
            } else {
                h[i * n + j]
            }
        });
        let Ok(llt) = m.llt(Side::Lower) else {
            damping *= 10.0;
            continue;
        };
        let mut linv = Mat::<f64>::identity(n, n);
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            llt.L(),
            linv.as_mut(),
            Par::Seq,
        );
        let mut u = vec![0f32; n * n];
        for i in 0..n {
            for j in i..n {
                u[i * n + j] = linv[(n - 1 - i, n - 1 - j)] as f32;
            }
        }
        if u.iter().any(|v| !v.is_finite()) || (0..n).any(|i| !(u[i * n + i] > 0.0)) {
            damping *= 10.0;
            continue;
        }
        return Ok(InverseFactor {
            n,
            u,
            damping,
            retries,
            dead,
        });
    }
    Err(format!(
        "the Hessian stays singular even with damping {:.0e} of its mean diagonal",
        damping / 10.0
    ))
}

/// Permutes a symmetric `n × n` matrix: `out[i][j] = h[p[i]][p[j]]`.
pub fn permute(h: &[f64], n: usize, p: &[usize]) -> Vec<f64> {
    let mut out = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = h[p[i] * n + p[j]];
        }
    }
    out
}

/// Rows per parallel task of the weighted-error products.
const ROWS: usize = 32;

/// `Σ_r e_r · H · e_rᵀ` for `e` (row-major `rows × n`): the squared output error over the
/// calibration tokens that a weight error `e` causes, when `H = XᵀX`.
pub fn weighted_error(e: &[f32], h: &[f32], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let hm = MatRef::from_row_major_slice(h, n, n);
    e.par_chunks(ROWS * n)
        .map(|chunk| {
            let r = chunk.len() / n;
            let em = MatRef::from_row_major_slice(chunk, r, n);
            let mut eh = Mat::<f32>::zeros(r, n);
            faer::linalg::matmul::matmul(eh.as_mut(), Accum::Replace, em, hm, 1.0, Par::Seq);
            let mut acc = 0f64;
            for i in 0..r {
                let mut s = 0f64;
                for j in 0..n {
                    s += (eh[(i, j)] * chunk[i * n + j]) as f64;
                }
                acc += s;
            }
            acc
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// The Hessian as f32 (the weighted products run in f32).
pub fn to_f32(h: &[f64]) -> Vec<f32> {
    h.iter().map(|&v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Vec<f64> {
        // XᵀX of a random-ish X: symmetric positive semi-definite.
        let rows = 3 * n;
        let x: Vec<f64> = (0..rows * n)
            .map(|i| (((i * 7919) % 97) as f64 / 48.0 - 1.0) + if i % (n + 1) == 0 { 0.5 } else { 0.0 })
            .collect();
        let mut h = vec![0f64; n * n];
        for r in 0..rows {
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += x[r * n + i] * x[r * n + j];
                }
            }
        }
        h
    }

    #[test]
    fn the_factor_inverts_the_damped_hessian() {
        let n = 12;
        let h = spd(n);
        let f = inverse_factor(&h, n, 0.01).unwrap();
        assert_eq!(f.retries, 0);
        let mean = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
        // (UᵀU)·(H + λI) = I.
        for i in 0..n {
            for j in 0..n {
                let mut s = 0f64;
                for k in 0..n {
                    let mut uu = 0f64;
                    for m in 0..n {
                        uu += f.u[m * n + i] as f64 * f.u[m * n + k] as f64;
                    }
                    let hk = h[k * n + j] + if k == j { 0.01 * mean } else { 0.0 };
                    s += uu * hk;
                }
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-3, "{i} {j}: {s}");
            }
        }
    }

    #[test]
    fn an_indefinite_hessian_is_damped_until_it_factors() {
        let n = 4;
        let mut h = vec![0f64; n * n];
        for i in 0..n {
            h[i * n + i] = 1.0;
        }
        h[1] = 3.0; // off-diagonal far larger than the diagonal: indefinite
        h[n] = 3.0;
        let f = inverse_factor(&h, n, 0.01).unwrap();
        assert!(f.retries > 0 && f.damping > 0.01, "{f:?}");
    }

    #[test]
    fn dead_columns_are_reported_and_do_not_break_the_factor() {
        let n = 6;
        let mut h = spd(n);
        for j in 0..n {
            h[2 * n + j] = 0.0;
            h[j * n + 2] = 0.0;
        }
        let f = inverse_factor(&h, n, 0.01).unwrap();
        assert_eq!(f.dead, vec![2]);
        assert!(f.u.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn weighted_error_is_the_quadratic_form() {
        let n = 5;
        let h = spd(n);
        let e: Vec<f32> = (0..3 * n).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut want = 0f64;
        for r in 0..3 {
            for i in 0..n {
                for j in 0..n {
                    want += e[r * n + i] as f64 * h[i * n + j] * e[r * n + j] as f64;
                }
            }
        }
        let got = weighted_error(&e, &to_f32(&h), n);
        assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{got} vs {want}");
    }
}
