//! Causal multi-head attention of a batch of new tokens over the KV cache, with grouped KV heads
//! and an optional sliding window.

use crate::kv_cache::LayerCache;
use rayon::prelude::*;

pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim_k: usize,
    pub head_dim_v: usize,
    pub n_ctx: usize,
    /// Position of the first token of the batch.
    pub pos0: usize,
    /// Keys further back than `window - 1` positions are invisible.
    pub window: Option<usize>,
}

/// `q` (n_tokens × n_head·head_dim_k, already scaled) attends over cache positions
/// `0 ..= pos0 + t`; writes `out` (n_tokens × n_head·head_dim_v).
pub fn attend(q: &[f32], cache: &LayerCache, s: &AttnShape, out: &mut [f32]) {
    let (hk, hv) = (s.head_dim_k, s.head_dim_v);
    let group = s.n_head / s.n_head_kv;
    out.par_chunks_mut(s.n_head * hv).enumerate().for_each_init(
        || Vec::with_capacity(s.n_ctx),
        |scores: &mut Vec<f32>, (t, out_row)| {
            let pos = s.pos0 + t;
            let lo = match s.window {
                Some(w) => (pos + 1).saturating_sub(w),
                None => 0,
            };
            for h in 0..s.n_head {
                let kvh = h / group;
                let qh = &q[(t * s.n_head + h) * hk..][..hk];
                let keys = &cache.k[(kvh * s.n_ctx) * hk..];
                scores.clear();
                let mut max = f32::NEG_INFINITY;
                for j in lo..=pos {
                    let kj = &keys[j * hk..][..hk];
                    let d: f32 = qh.iter().zip(kj).map(|(a, b)| a * b).sum();
                    max = max.max(d);
                    scores.push(d);
                }
                let mut sum = 0f32;
                for sc in scores.iter_mut() {
                    *sc = (*sc - max).exp();
                    sum += *sc;
                }
                let inv = 1.0 / sum;
                let oh = &mut out_row[h * hv..][..hv];
                oh.fill(0.0);
                let values = &cache.v[(kvh * s.n_ctx) * hv..];
                for (j, &w) in (lo..=pos).zip(scores.iter()) {
                    let vj = &values[j * hv..][..hv];
                    let w = w * inv;
                    oh.iter_mut().zip(vj).for_each(|(o, &v)| *o += w * v);
                }
            }
        },
    );
}
