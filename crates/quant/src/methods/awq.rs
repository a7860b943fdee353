//! AWQ (Lin et al., 2023): activation-aware weight quantization. A few input channels carry
//! large activations, and the weights they multiply matter most; scaling those weight columns
//! up by `s` (and the input down by `s`) makes their rounding error relatively smaller while
//! the float model stays the same.
//!
//! 1. Scale search, per site (the linears that share one input: Q/K/V, gate/up, O, down):
//!    `s = mean|x|^α`, normalised to a geometric mean of one, for α on a grid over [0, 1]; each
//!    candidate quantizes `W·diag(s)` with the target's quantizer and is scored by the site's
//!    output error `Σ (Q(W·s)/s − W)·H·(…)ᵀ` over the calibration tokens (`H = XᵀX`, exactly the
//!    output MSE, without keeping the activations). α = 0 is plain rounding, so the chosen
//!    scales are never worse than none.
//! 2. The calibration layer folds `s` into the op before the site (the norm before Q/K/V and
//!    gate/up, up's rows before down, V's rows before O — with grouped KV heads the scales of the
//!    heads sharing a V are tied), so the output file has no extra tensors.
//! 3. Clipping search, per block of each row: the block's fitted scale is shrunk by factors down
//!    to `min_clip` and the factor with the least output error of that block (`e·H_bb·eᵀ`) is
//!    kept; factor 1 (no clipping) is always a candidate.

use super::rtn::round_to_nearest;
use super::{
    block_len, check_job, encode_rows, fit, importance_of, job_error, map_rows, Method,
    MethodNotes, Needs, QuantOutcome, SiteJob, SiteScales, TensorJob,
};
use crate::error::QuantError;
use crate::linalg::{to_f32, weighted_error};
use lowbit_formats::grid::RowGrid;

#[derive(Clone, Debug)]
pub struct AwqOptions {
    /// α candidates: 0, 1/grid, …, 1, then refined twice around the best (resolution
    /// 1/(4·grid)).
    pub grid: usize,
    /// Clipping factors tried per block: 1, …, `min_clip` in `clip_steps` steps.
    pub clip_steps: usize,
    pub min_clip: f32,
}

impl Default for AwqOptions {
    fn default() -> Self {
        AwqOptions {
            grid: 5,
            clip_steps: 10,
            min_clip: 0.75,
        }
    }
}

pub struct Awq(pub AwqOptions);

/// Floor of an activation scale, so a channel that never fired keeps a finite scale.
const MIN_SCALE: f64 = 1e-4;

impl Method for Awq {
    fn name(&self) -> &'static str {
        "awq"
    }

    fn needs(&self) -> Needs {
        Needs {
            importance: true,
            hessian: true,
            mean_abs: true,
        }
    }

    fn site_scales(&self, site: &SiteJob) -> Result<Option<SiteScales>, QuantError> {
        let Some(first) = site.tensors.first() else {
            return Ok(None);
        };
        let err = |message: String| QuantError::Method {
            tensor: first.name.into(),
            message,
        };
        for t in &site.tensors {
            check_job(t)?;
        }
        if site.tensors.iter().all(|t| t.target.is_float()) {
            return Ok(None);
        }
        let stats = site.stats;
        let mean_abs = stats.mean_abs().ok_or_else(|| err(NEEDS.into()))?;
        let h = stats.hessian.as_ref().ok_or_else(|| err(NEEDS.into()))?;
        let n = stats.cols;
        let h32 = to_f32(h);
        let energy: f64 = site
            .tensors
            .iter()
            .map(|t| weighted_error(t.values, &h32, n))
            .sum();
        let n_tok = stats.tokens.max(1) as f64;
        let loss_at = |alpha: f32| -> Result<(f64, Vec<f64>), QuantError> {
            let s = scales_for(&mean_abs, alpha as f64);
            // The importance of the scaled input, x/s: mean x² / s² (the Hessian is only needed
            // unscaled, for the error in the original space).
            let imp: Vec<f32> = stats
                .sum_sq
                .iter()
                .zip(&s)
                .map(|(&v, &k)| (v / n_tok / (k * k)) as f32)
                .collect();
            let mut loss = 0.0;
            for t in &site.tensors {
                loss += scaled_rtn_error(t, &s, &imp, &h32)?;
            }
            Ok((loss, s))
        };
        // Coarse to fine: α on a grid of `grid` steps, then halving steps around the best
        // until 1/(4·grid) — the resolution of a 4·grid-point scan at a fraction of its cost.
        let grid = self.0.grid.max(1);
        let mut tried: Vec<(f32, f64, Vec<f64>)> = Vec::new();
        for k in 0..=grid {
            let a = k as f32 / grid as f32;
            let (l, sc) = loss_at(a)?;
            tried.push((a, l, sc));
        }
        let before = tried[0].1;
        let mut step = 0.5 / grid as f32;
        for _ in 0..2 {
            let centre = tried
                .iter()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("candidates")
                .0;
            for a in [centre - step, centre + step] {
                if (0.0..=1.0).contains(&a) && !tried.iter().any(|t| (t.0 - a).abs() < 1e-6) {
                    let (l, sc) = loss_at(a)?;
                    tried.push((a, l, sc));
                }
            }
            step /= 2.0;
        }
        let best = tried
            .into_iter()
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)))
            .map(|(a, l, sc)| (l, a, sc));
        let (loss, alpha, s) = best.expect("at least one candidate");
        let rel = |v: f64| if energy > 0.0 { v / energy } else { 0.0 };
        Ok(Some(SiteScales {
            scales: s.iter().map(|&v| v as f32).collect(),
            alpha,
            error_before: rel(before),
            error_after: rel(loss),
        }))
    }

    /// Quantizes a tensor whose columns already carry the site's scales (and whose statistics
    /// are those of the scaled input): importance-weighted fit, then the clipping search.
    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError> {
        check_job(job)?;
        let err = job_error(job);
        if job.target.is_float() {
            return super::rtn::Rtn.quantize(job);
        }
        let stats = job.stats.ok_or_else(|| err(NEEDS.into()))?;
        let h = stats.hessian.as_ref().ok_or_else(|| err(NEEDS.into()))?;
        let n = job.cols;
        let be = block_len(&job.target, n);
        let imp = importance_of(Some(stats));
        let factors: Vec<f32> = (0..=self.0.clip_steps)
            .map(|k| 1.0 - k as f32 * (1.0 - self.0.min_clip) / self.0.clip_steps.max(1) as f32)
            .collect();
        // The diagonal blocks of H, one per block of columns.
        let hb: Vec<Vec<f32>> = (0..n / be)
            .map(|b| {
                let mut m = vec![0f32; be * be];
                for i in 0..be {
                    for j in 0..be {
                        m[i * be + j] = h[(b * be + i) * n + b * be + j] as f32;
                    }
                }
                m
            })
            .collect();
        let per_row = map_rows(job, |row| clip_row(row, job, be, imp.as_deref(), &hb, &factors))?;
        let mean_clip =
            per_row.iter().map(|r| r.2).sum::<f32>() / per_row.len().max(1) as f32;
        let per_row = per_row.into_iter().map(|(c, g, _)| (c, g)).collect();
        let encoded = encode_rows(&job.target, job.rows, n, per_row).map_err(err)?;
        Ok(QuantOutcome {
            encoded,
            notes: MethodNotes {
                clip: Some(mean_clip),
                ..MethodNotes::default()
            },
        })
    }
}

const NEEDS: &str = "needs calibration statistics (mean |x| and the Hessian): give --calib FILE";

/// `s_j = max(mean|x_j|, ε)^α`, divided by `√(max s · min s)` so the scales centre on one.
pub fn scales_for(mean_abs: &[f64], alpha: f64) -> Vec<f64> {
    let s: Vec<f64> = mean_abs
        .iter()
        .map(|&m| m.max(MIN_SCALE).powf(alpha))
        .collect();
    let (lo, hi) = s
        .iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let norm = (lo * hi).sqrt();
    s.iter().map(|&v| v / norm).collect()
}

/// Output error of rounding `W·diag(s)` (importance from the scaled input) and dividing the
/// scales back out.
fn scaled_rtn_error(
    t: &TensorJob,
    s: &[f64],
    importance: &[f32],
    h32: &[f32],
) -> Result<f64, QuantError> {
    let n = t.cols;
    let w: Vec<f32> = t
        .values
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * s[i % n]) as f32)
        .collect();
    let job = TensorJob {
        values: &w,
        stats: None,
        ..*t
    };
    let imp = importance.iter().all(|v| v.is_finite()).then_some(importance);
    let q = QuantOutcome {
        encoded: round_to_nearest(&job, imp)?,
        notes: MethodNotes::default(),
    }
    .dequantize(&t.target, t.rows, n)?;
    let e: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 / s[i % n]) as f32 - t.values[i])
        .collect();
    Ok(weighted_error(&e, h32, n))
}

/// One row: fit every block, then for each block the clipping factor of least `e·H_bb·eᵀ`.
/// Returns the codes, the block grids and the mean factor chosen.
fn clip_row(
    row: &[f32],
    job: &TensorJob,
    be: usize,
    imp: Option<&[f32]>,
    hb: &[Vec<f32>],
    factors: &[f32],
) -> Result<(Vec<u8>, Vec<RowGrid>, f32), String> {
    let n = row.len();
    let mut codes = vec![0u8; n];
    let mut grids = Vec::with_capacity(n / be);
    let mut sum_r = 0f32;
    for b in 0..n / be {
        let x = &row[b * be..(b + 1) * be];
        let w = imp.map(|w| &w[b * be..(b + 1) * be]);
        let base = fit(&job.target, x, w)?;
        let mut best: Option<(f64, f32, RowGrid, Vec<u8>)> = None;
        for &r in factors {
            let mut g = base.clone();
            if r != 1.0 {
                for k in 0..g.len() / g.block_elems() {
                    g.rescale_block(k, r);
                }
            }
            let c = g.nearest_codes(x);
            let e: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| v - g.value(i, c[i]))
                .collect();
            let m = &hb[b];
            let mut err = 0f64;
            for i in 0..be {
                let mut s = 0f32;
                for j in 0..be {
                    s += m[i * be + j] * e[j];
                }
                err += (s * e[i]) as f64;
            }
            if best.as_ref().is_none_or(|bst| err < bst.0) {
                best = Some((err, r, g, c));
            }
        }
        let (_, r, g, c) = best.expect("factor 1 is always tried");
        codes[b * be..(b + 1) * be].copy_from_slice(&c);
        grids.push(g);
        sum_r += r;
    }
    Ok((codes, grids, sum_r / (n / be).max(1) as f32))
}
