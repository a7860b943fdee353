//! Element-wise and per-row operations of the forward pass. Rows are independent, so each op
//! runs over rows in parallel with rayon; none allocates per element.

pub use super::vmath::GateAct;
use super::vmath;
use rayon::prelude::*;

/// In-place RMS norm of every `w.len()`-wide row of `x`, scaled by `w`. The mean square is summed
/// in f64 as ggml does, so long rows lose nothing to accumulation order.
pub fn rms_norm_rows(x: &mut [f32], w: &[f32], eps: f32) {
    let n = w.len();
    x.par_chunks_mut(n)
        .for_each(|row| rms_norm_row(row, w, eps));
}

pub fn rms_norm_row(row: &mut [f32], w: &[f32], eps: f32) {
    // Eight partial sums: the same f64 precision, but the adds no longer wait on each other.
    let mut acc = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] += (c[k] as f64) * (c[k] as f64);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| (v as f64) * (v as f64)).sum();
    let ss = acc.iter().sum::<f64>() + tail;
    let scale = 1.0 / ((ss / row.len() as f64) as f32 + eps).sqrt();
    for (v, &g) in row.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

pub fn add_bias_rows(x: &mut [f32], b: &[f32]) {
    x.par_chunks_mut(b.len())
        .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &c)| *v += c));
}

pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(4096)
        .zip(y.par_chunks(4096))
        .for_each(|(a, b)| {
            a.iter_mut().zip(b).for_each(|(u, &v)| *u += v);
        });
}

pub fn scale_in_place(x: &mut [f32], s: f32) {
    x.par_chunks_mut(4096)
        .for_each(|a| a.iter_mut().for_each(|v| *v *= s));
}

/// Rotary embedding tables: `cos`/`sin` for each token and each rotated pair.
pub struct Rope {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    /// Pair `i` turns by `pos · base^(-2i/n_rot)`; the angle advances by repeated f32
    /// multiplication as in ggml, so positions far into the context round the same way.
    pub fn new(positions: impl Iterator<Item = usize>, n_rot: usize, base: f32) -> Rope {
        let half = n_rot / 2;
        let theta_scale = base.powf(-2.0 / n_rot as f32);
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for p in positions {
            let mut theta = p as f32;
            for _ in 0..half {
                cos.push(theta.cos());
                sin.push(theta.sin());
                theta *= theta_scale;
            }
        }
        Rope { half, cos, sin }
    }

    /// Rotates every head of every token row of `x` (`n_heads` heads of `head_dim`). NeoX pairs
    /// dimension `i` with `i + n_rot/2`; otherwise pairs are adjacent.
    pub fn apply(&self, x: &mut [f32], n_heads: usize, head_dim: usize, neox: bool) {
        let half = self.half;
        x.par_chunks_mut(n_heads * head_dim)
            .enumerate()
            .for_each(|(t, row)| {
                let cos = &self.cos[t * half..(t + 1) * half];
                let sin = &self.sin[t * half..(t + 1) * half];
                for head in row.chunks_mut(head_dim) {
                    for i in 0..half {
                        let (a, b) = if neox {
                            (i, i + half)
                        } else {
                            (2 * i, 2 * i + 1)
                        };
                        let (x0, x1) = (head[a], head[b]);
                        head[a] = x0 * cos[i] - x1 * sin[i];
                        head[b] = x0 * sin[i] + x1 * cos[i];
                    }
                }
            });
    }
}

/// `gate[i] = act(gate[i]) · up[i]`, in parallel chunks.
pub fn glu_in_place(gate: &mut [f32], up: &[f32], act: GateAct) {
    gate.par_chunks_mut(4096)
        .zip(up.par_chunks(4096))
        .for_each(|(g, u)| vmath::glu(g, u, act));
}

/// Natural-log softmax normaliser: returns (max, ln Σ exp(x - max)), summed in f64.
pub fn log_sum_exp(x: &[f32]) -> (f32, f64) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
    (max, sum.ln())
}
