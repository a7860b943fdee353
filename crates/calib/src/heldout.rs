//! A held-out slice of the calibration text and the float model's next-token distributions on
//! it: what budgeted allocations are verified against (KLD, perplexity ratio, top-1 agreement of
//! a quantized model), without touching the evaluation text.

use crate::error::CalibError;
use lowbit_engine::eval::score_position;
use lowbit_engine::Model;
use serde::Serialize;

/// Positions scored per window (its last ones, which have the most context).
pub const SCORED: usize = 128;

pub struct HeldOut {
    pub windows: Vec<Vec<u32>>,
    /// Float log-probabilities of the scored positions, per window.
    base: Vec<Vec<f32>>,
    base_nll: f64,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Measured {
    pub kld: f64,
    /// PPL(quantized) / PPL(float) on the scored positions.
    pub ppl_ratio: f64,
    pub top1: f64,
}

impl HeldOut {
    /// The float model's distributions on `windows`.
    pub fn new(float_model: &Model, windows: Vec<Vec<u32>>) -> Result<HeldOut, CalibError> {
        let mut base = Vec::with_capacity(windows.len());
        let mut nll = 0f64;
        let mut count = 0usize;
        for w in &windows {
            let (lp, n) = log_probs(float_model, w)?;
            nll += n;
            count += lp.len() / float_model.n_vocab();
            base.push(lp);
        }
        Ok(HeldOut {
            windows,
            base,
            base_nll: nll / count.max(1) as f64,
        })
    }

    /// How far `model` is from the float model on the held-out windows.
    pub fn measure(&self, model: &Model) -> Result<Measured, CalibError> {
        let v = model.n_vocab();
        let (mut kld, mut nll, mut same, mut count) = (0f64, 0f64, 0usize, 0usize);
        for (w, b) in self.windows.iter().zip(&self.base) {
            let (lp, n) = log_probs(model, w)?;
            nll += n;
            for (q, f) in lp.chunks_exact(v).zip(b.chunks_exact(v)) {
                kld += kld_of(f, q);
                same += (argmax(q) == argmax(f)) as usize;
                count += 1;
            }
        }
        let c = count.max(1) as f64;
        Ok(Measured {
            kld: kld / c,
            ppl_ratio: (nll / c - self.base_nll).exp(),
            top1: same as f64 / c,
        })
    }
}

/// Log-probabilities of the last [`SCORED`] positions of a window, and the sum of the negative
/// log-likelihoods of the tokens that follow them.
fn log_probs(model: &Model, w: &[u32]) -> Result<(Vec<f32>, f64), CalibError> {
    let n = w.len();
    let first = n.saturating_sub(SCORED + 1);
    let mut cache = model.new_cache(n);
    let mut l = model.forward(&w[..n - 1], &mut cache, first)?;
    let v = model.n_vocab();
    let mut nll = 0f64;
    for (i, row) in l.chunks_exact_mut(v).enumerate() {
        let mut lp = vec![0f32; v];
        let s = score_position(row, w[first + i + 1] as usize, None, Some(&mut lp));
        nll += s.nll as f64;
        row.copy_from_slice(&lp);
    }
    Ok((l, nll))
}

/// KLD(base ‖ q) of two log-probability rows (base entries below e⁻¹⁶ left out, as
/// llama-perplexity does).
pub fn kld_of(base: &[f32], q: &[f32]) -> f64 {
    base.iter()
        .zip(q)
        .filter(|(&lb, _)| lb > -16.0)
        .map(|(&lb, &lq)| (lb.exp() * (lb - lq)) as f64)
        .sum()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
