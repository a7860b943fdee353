//! GPTQ (Frantar et al., 2022): quantize a linear layer column by column, pushing each column's
//! rounding error onto the columns not yet quantized so that the layer's *output* on the
//! calibration inputs changes as little as possible.
//!
//! With `H = XᵀX` over the calibration tokens, the output error of a weight error `E` is
//! `Σ_rows e·H·eᵀ`. The steps, as in the paper:
//!
//! 1. Dead columns (an input that was always zero) get `H_jj = 1` and zero weights.
//! 2. Act-order (optional): columns in decreasing `H_jj`, so the most active inputs are rounded
//!    while the most columns remain to absorb their error.
//! 3. Damping: `H + λ·mean(diag H)·I`, λ = 1 %; when Cholesky fails, λ ×10 and retry (reported).
//! 4. `U` = upper Cholesky factor of `H⁻¹`.
//! 5. The sweep: for column `j`, `q = round(w_j)`, `e = (w_j − q) / U_jj`, and every later
//!    column `k` gets `w_k −= e·U_jk`. Lazily: inside a batch of columns immediately, for the
//!    columns after the batch once per batch as one matrix product.
//!
//! Rounding lands on the target's own grid: when the sweep reaches the first column of a block
//! (a GGUF block, an affine group) the block's scales are fitted to the weights as they are at
//! that moment — error feedback included, weighted by the importance `diag H` — exactly as the
//! format's quantizer would fit them ([`lowbit_formats::grid`]); then each column rounds onto
//! that fixed grid. With act-order, blocks are no longer swept in order, so their scales are
//! fitted up front from the original weights ("static groups"; also available on its own).
//!
//! Finally the result competes with round-to-nearest (plain and importance-weighted) on the
//! same output error, and the lower one is kept: weights already on the target's grid come back
//! unchanged, and a tensor GPTQ cannot improve never gets worse.

use super::rtn::round_to_nearest;
use super::{
    block_len, check_job, encode_rows, fit, importance_of, job_error, Encoded, Method,
    MethodNotes, Needs, QuantOutcome, TensorJob,
};
use crate::error::QuantError;
use crate::linalg::{inverse_factor, permute, to_f32, weighted_error, InverseFactor};
use crate::target::Target;
use faer::{Accum, MatMut, MatRef, Par};
use lowbit_formats::grid::RowGrid;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct GptqOptions {
    /// Damping added to the Hessian's diagonal, relative to its mean (the paper's 1 %).
    pub damp: f64,
    /// Columns per lazy batch (rounded up to a whole number of the target's blocks).
    pub batch: usize,
    /// Quantize columns in decreasing order of activation energy (`desc_act`).
    pub act_order: bool,
    /// Fit every block's scales from the original weights before the sweep (implied by
    /// act-order).
    pub static_groups: bool,
}

impl Default for GptqOptions {
    fn default() -> Self {
        GptqOptions {
            damp: 0.01,
            batch: 128,
            act_order: true,
            static_groups: false,
        }
    }
}

pub struct Gptq {
    pub opts: GptqOptions,
    /// The last factorisation, keyed by a fingerprint of its Hessian: the linears of one input
    /// site (Q, K, V; gate, up) share it.
    cache: Mutex<Option<(u64, Arc<Factored>)>>,
}

impl Gptq {
    pub fn new(opts: GptqOptions) -> Gptq {
        Gptq {
            opts,
            cache: Mutex::new(None),
        }
    }

    fn factored(&self, h: &[f64], n: usize) -> Result<Arc<Factored>, String> {
        let key = fingerprint(h, self.opts.act_order, self.opts.damp);
        if let Some((k, f)) = self.cache.lock().expect("not poisoned").as_ref() {
            if *k == key {
                return Ok(f.clone());
            }
        }
        let perm: Vec<usize> = if self.opts.act_order {
            let mut p: Vec<usize> = (0..n).collect();
            // Stable: equal energies keep their order, so the result is deterministic.
            p.sort_by(|&a, &b| h[b * n + b].total_cmp(&h[a * n + a]));
            p
        } else {
            (0..n).collect()
        };
        let factor = if self.opts.act_order {
            inverse_factor(&permute(h, n, &perm), n, self.opts.damp)?
        } else {
            inverse_factor(h, n, self.opts.damp)?
        };
        let f = Arc::new(Factored { perm, factor });
        *self.cache.lock().expect("not poisoned") = Some((key, f.clone()));
        Ok(f)
    }
}

/// The column order and inverse-Hessian factor of one input site.
struct Factored {
    perm: Vec<usize>,
    factor: InverseFactor,
}

/// FNV-1a over the Hessian's bits and the options that shape its factor.
fn fingerprint(h: &[f64], act_order: bool, damp: f64) -> u64 {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for v in h.iter().map(|v| v.to_bits()).chain([act_order as u64, damp.to_bits(), h.len() as u64]) {
        x = (x ^ v).wrapping_mul(0x0100_0000_01b3);
    }
    x
}

/// Rows swept together: the batch updates become matrix products over this many rows.
const ROWS: usize = 32;

impl Method for Gptq {
    fn name(&self) -> &'static str {
        "gptq"
    }

    fn needs(&self) -> Needs {
        Needs {
            importance: true,
            hessian: true,
            mean_abs: false,
        }
    }

    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError> {
        check_job(job)?;
        let err = job_error(job);
        if job.target.is_float() {
            return super::rtn::Rtn.quantize(job);
        }
        let stats = job.stats.ok_or_else(|| err(NEEDS_CALIBRATION.into()))?;
        let h = stats
            .hessian
            .as_ref()
            .ok_or_else(|| err(NEEDS_CALIBRATION.into()))?;
        let (rows, n) = (job.rows, job.cols);
        let imp = importance_of(Some(stats));
        let h32 = to_f32(h);

        let opts = &self.opts;
        let be = block_len(&job.target, n);
        let per_channel = be == n && matches!(job.target, Target::Affine(_));
        let statik = opts.act_order || opts.static_groups || per_channel;
        let f = self.factored(h, n).map_err(err)?;
        let (perm, factor) = (&f.perm, &f.factor);
        // Batches hold whole blocks, so a block's scales are fitted after every earlier
        // column's error has reached it.
        let batch = if statik {
            opts.batch.max(1)
        } else {
            opts.batch.max(1).div_ceil(be) * be
        };

        let sweep = Sweep {
            target: &job.target,
            n,
            be,
            perm,
            factor,
            importance: imp.as_deref(),
            statik,
            batch,
        };
        let per_row: Vec<(Vec<u8>, Vec<RowGrid>)> = job
            .values
            .par_chunks(ROWS * n)
            .map(|chunk| sweep.run(chunk))
            .collect::<Result<Vec<_>, String>>()
            .map_err(err)?
            .into_iter()
            .flatten()
            .collect();
        let gptq = encode_rows(&job.target, rows, n, per_row).map_err(err)?;

        // Keep whichever of GPTQ and round-to-nearest changes the outputs least.
        let energy = weighted_error(job.values, &h32, n);
        let error_of = |e: &Encoded| -> Result<f64, QuantError> {
            let out = QuantOutcome {
                encoded: e.clone(),
                notes: MethodNotes::default(),
            };
            let back = out.dequantize(&job.target, rows, n)?;
            let diff: Vec<f32> = job.values.iter().zip(&back).map(|(a, b)| a - b).collect();
            Ok(weighted_error(&diff, &h32, n))
        };
        let mut best = ("gptq", error_of(&gptq)?, gptq);
        // Round-to-nearest weighted by the importance: it recovers weights already on the
        // target's grid exactly (so those come back unchanged), and is the baseline GPTQ must beat.
        let cand = round_to_nearest(job, imp.as_deref())?;
        let e = error_of(&cand)?;
        if e <= best.1 {
            best = ("rtn", e, cand);
        }
        Ok(QuantOutcome {
            encoded: best.2,
            notes: MethodNotes {
                chosen: Some(best.0),
                damping: Some(factor.damping),
                damping_retries: factor.retries,
                dead_columns: factor.dead.len(),
                output_error: Some(if energy > 0.0 { best.1 / energy } else { 0.0 }),
                ..MethodNotes::default()
            },
        })
    }
}

pub(crate) const NEEDS_CALIBRATION: &str =
    "needs calibration statistics (the input Hessian): give --calib FILE";

/// One sweep's fixed inputs.
struct Sweep<'a> {
    target: &'a Target,
    n: usize,
    /// Elements per block of the target.
    be: usize,
    /// Sweep position → original column.
    perm: &'a [usize],
    factor: &'a InverseFactor,
    importance: Option<&'a [f32]>,
    statik: bool,
    batch: usize,
}

/// Scale factors tried on each block's fitted grid (1 = the fit itself).
const SCALE_FACTORS: [f32; 6] = [1.0, 0.85, 0.9, 0.95, 1.05, 1.1];

impl Sweep<'_> {
    /// Of the block's fitted grid and its rescaled variants, the one whose sweep through the
    /// block (rounding with error feedback inside it) adds the least to GPTQ's objective
    /// `Σ ((w − q)/U_jj)²`. The fit minimises each element's error; this accounts for what the
    /// feedback does to the columns after it.
    fn best_scale(&self, base: RowGrid, x: &[f32], p: usize) -> RowGrid {
        let n = self.n;
        let u = &self.factor.u;
        let loss = |g: &RowGrid| -> f32 {
            let mut w = x.to_vec();
            let mut total = 0f32;
            for k in 0..w.len() {
                let col = p + k;
                let (_, q) = g.round(k, w[k]);
                let e = (w[k] - q) / u[col * n + col];
                total += e * e;
                let urow = &u[col * n + p + k + 1..col * n + p + w.len()];
                for (v, &uk) in w[k + 1..].iter_mut().zip(urow) {
                    *v -= e * uk;
                }
            }
            total
        };
        let mut best = (loss(&base), base.clone());
        for &r in &SCALE_FACTORS[1..] {
            let mut g = base.clone();
            g.rescale_block(0, r);
            let l = loss(&g);
            if l < best.0 {
                best = (l, g);
            }
        }
        best.1
    }

    /// Sweeps a chunk of rows (row-major, `n` columns): each row's codes in original column
    /// order and the grids of its blocks in order.
    fn run(&self, chunk: &[f32]) -> Result<Vec<(Vec<u8>, Vec<RowGrid>)>, String> {
        let (n, be) = (self.n, self.be);
        let r = chunk.len() / n;
        let nb = n / be;
        let u = &self.factor.u;
        let imp_block = |b: usize| self.importance.map(|w| &w[b * be..(b + 1) * be]);
        // Working copy in sweep order, dead columns zeroed.
        let mut w = vec![0f32; r * n];
        for i in 0..r {
            for p in 0..n {
                w[i * n + p] = chunk[i * n + self.perm[p]];
            }
            for &d in &self.factor.dead {
                let p = self.perm.iter().position(|&j| j == d).unwrap_or(d);
                w[i * n + p] = 0.0;
            }
        }
        let mut grids: Vec<Vec<Option<RowGrid>>> = vec![vec![None; nb]; r];
        if self.statik {
            for (i, g) in grids.iter_mut().enumerate() {
                for (b, slot) in g.iter_mut().enumerate() {
                    let x = &chunk[i * n + b * be..i * n + (b + 1) * be];
                    *slot = Some(fit(self.target, x, imp_block(b))?);
                }
            }
        }
        let mut codes = vec![vec![0u8; n]; r];
        let mut i1 = 0;
        while i1 < n {
            let i2 = (i1 + self.batch).min(n);
            let bw = i2 - i1;
            let mut errs = vec![0f32; r * bw];
            for p in i1..i2 {
                let j = self.perm[p];
                if !self.statik && j % be == 0 {
                    // Without act-order the sweep order is the column order: the block's
                    // columns are w[.., p .. p + be], all inside this batch.
                    for (i, g) in grids.iter_mut().enumerate() {
                        let x = &w[i * n + p..i * n + p + be];
                        let base = fit(self.target, x, imp_block(j / be))?;
                        g[j / be] = Some(self.best_scale(base, x, p));
                    }
                }
                let d = u[p * n + p];
                let urow = &u[p * n + p + 1..p * n + i2];
                for i in 0..r {
                    let g = grids[i][j / be].as_ref().expect("fitted before its first column");
                    let row = &mut w[i * n..(i + 1) * n];
                    let (c, q) = g.round(j % be, row[p]);
                    codes[i][j] = c;
                    let e = (row[p] - q) / d;
                    errs[i * bw + (p - i1)] = e;
                    for (x, &uk) in row[p + 1..i2].iter_mut().zip(urow) {
                        *x -= e * uk;
                    }
                }
            }
            if i2 < n {
                // w[:, i2..] −= E · U[i1..i2, i2..]
                let um = MatRef::from_row_major_slice(u, n, n).submatrix(i1, i2, bw, n - i2);
                let em = MatRef::from_row_major_slice(&errs, r, bw);
                let wm = MatMut::from_row_major_slice_mut(&mut w, r, n);
                let tail = wm.submatrix_mut(0, i2, r, n - i2);
                faer::linalg::matmul::matmul(tail, Accum::Add, em, um, -1.0f32, Par::Seq);
            }
            i1 = i2;
        }
        Ok(codes
            .into_iter()
            .zip(grids)
            .map(|(c, g)| (c, g.into_iter().map(|g| g.expect("every block fitted")).collect()))
            .collect())
    }
}
