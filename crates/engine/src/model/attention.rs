//! Causal multi-head attention of a batch of new tokens over the KV cache, with grouped KV heads
//! and an optional sliding window. Work is split by (token, head) pairs, so a single generated
//! token still spreads its heads over every thread.

use super::vmath;
use crate::kernels::cpu::{self, Level};
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
    let wide = cpu::detected() >= Level::Avx2;
    out.par_chunks_mut(s.head_dim_v).enumerate().for_each_init(
        || Vec::with_capacity(s.n_ctx),
        |scores: &mut Vec<f32>, (i, oh)| {
            let (t, h) = (i / s.n_head, i % s.n_head);
            #[cfg(target_arch = "x86_64")]
            if wide {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                return unsafe { one_head_wide(q, cache, s, t, h, scores, oh) };
            }
            let _ = wide;
            one_head(q, cache, s, t, h, scores, oh)
        },
    );
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn one_head_wide(
    q: &[f32],
    cache: &LayerCache,
    s: &AttnShape,
    t: usize,
    h: usize,
    scores: &mut Vec<f32>,
    oh: &mut [f32],
) {
    one_head(q, cache, s, t, h, scores, oh)
}

/// Head `h` of token `t`: scores against every visible key, softmax, weighted sum of values.
#[inline(always)]
fn one_head(
    q: &[f32],
    cache: &LayerCache,
    s: &AttnShape,
    t: usize,
    h: usize,
    scores: &mut Vec<f32>,
    oh: &mut [f32],
) {
    let (hk, hv) = (s.head_dim_k, s.head_dim_v);
    let kvh = h / (s.n_head / s.n_head_kv);
    let pos = s.pos0 + t;
    let lo = match s.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    let qh = &q[(t * s.n_head + h) * hk..][..hk];
    let keys = &cache.k[(kvh * s.n_ctx + lo) * hk..(kvh * s.n_ctx + pos + 1) * hk];
    // A plain loop, not `extend(map(..))`: the latter becomes a separate fold function that is
    // not inlined into the AVX2 copy and ran at baseline width.
    scores.clear();
    scores.resize(pos + 1 - lo, 0.0);
    for (sc, kj) in scores.iter_mut().zip(keys.chunks_exact(hk)) {
        *sc = vmath::dot(qh, kj);
    }
    let inv = 1.0 / vmath::softmax_unnormalised(scores);
    oh.fill(0.0);
    let values = &cache.v[(kvh * s.n_ctx + lo) * hv..(kvh * s.n_ctx + pos + 1) * hv];
    for (vj, &w) in values.chunks_exact(hv).zip(scores.iter()) {
        vmath::axpy(oh, w * inv, vj);
    }
}
