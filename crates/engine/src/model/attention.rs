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

/// Batches this large or larger compute their scores and outputs as matrix products.
const GEMM_MIN_TOKENS: usize = 16;
/// Queries per matrix-product task.
const QUERY_BLOCK: usize = 64;

/// `q` (n_tokens × n_head·head_dim_k, already scaled) attends over cache positions
/// `0 ..= pos0 + t`; writes `out` (n_tokens × n_head·head_dim_v).
pub fn attend(q: &[f32], cache: &LayerCache, s: &AttnShape, out: &mut [f32]) {
    let n = q.len() / (s.n_head * s.head_dim_k).max(1);
    if n >= GEMM_MIN_TOKENS {
        return attend_blocks(q, cache, s, out, n);
    }
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

/// A raw output pointer shared by tasks that write disjoint (query block, head) tiles.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each task writes only its own rows × head columns of `out`.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Prompt batches: per head and block of queries, `S = Q·Kᵀ` over the keys the block can see,
/// the causal (and sliding-window) mask and softmax per row, then `O = P·V` — two matrix
/// products instead of a dot product per (query, key) pair, which at 512 tokens made attention
/// half of a forward pass.
fn attend_blocks(q: &[f32], cache: &LayerCache, s: &AttnShape, out: &mut [f32], n: usize) {
    use faer::{Accum, MatMut, MatRef, Par};
    let (hk, hv) = (s.head_dim_k, s.head_dim_v);
    let group = s.n_head / s.n_head_kv;
    let blocks = n.div_ceil(QUERY_BLOCK);
    assert_eq!(out.len(), n * s.n_head * hv);
    let ptr = OutPtr(out.as_mut_ptr());
    let lo_of = |pos: usize| match s.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    (0..s.n_head * blocks).into_par_iter().for_each_init(Vec::new, |scores: &mut Vec<f32>, task| {
        let (h, b) = (task / blocks, task % blocks);
        let (t0, t1) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(n));
        let rows = t1 - t0;
        let kvh = h / group;
        // Keys visible to some query of the block: [lo, hi).
        let (lo, hi) = (lo_of(s.pos0 + t0), s.pos0 + t1);
        let len = hi - lo;
        let qm = MatRef::from_row_major_slice_with_stride(
            &q[(t0 * s.n_head + h) * hk..],
            rows,
            hk,
            s.n_head * hk,
        );
        let km = MatRef::from_row_major_slice(&cache.k[(kvh * s.n_ctx + lo) * hk..][..len * hk], len, hk);
        let vm = MatRef::from_row_major_slice(&cache.v[(kvh * s.n_ctx + lo) * hv..][..len * hv], len, hv);
        scores.clear();
        scores.resize(rows * len, 0.0);
        let sm = MatMut::from_row_major_slice_mut(scores, rows, len);
        faer::linalg::matmul::matmul(sm, Accum::Replace, qm, km.transpose(), 1.0f32, Par::Seq);
        for r in 0..rows {
            let pos = s.pos0 + t0 + r;
            let (a, z) = (lo_of(pos) - lo, pos + 1 - lo);
            let row = &mut scores[r * len..(r + 1) * len];
            let inv = 1.0 / vmath::softmax_unnormalised(&mut row[a..z]);
            row[..a].fill(0.0);
            row[z..].fill(0.0);
            row[a..z].iter_mut().for_each(|v| *v *= inv);
        }
        let pm = MatRef::from_row_major_slice(scores, rows, len);
        // SAFETY: rows t0..t1 × columns h·hv..(h+1)·hv of `out` belong to this task alone, and
        // lie inside `out` (asserted above).
        let om = unsafe {
            MatMut::from_raw_parts_mut(
                { ptr }.0.add((t0 * s.n_head + h) * hv),
                rows,
                hv,
                (s.n_head * hv) as isize,
                1,
            )
        };
        faer::linalg::matmul::matmul(om, Accum::Replace, pm, vm, 1.0f32, Par::Seq);
    });
}
