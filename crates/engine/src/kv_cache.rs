//! Keys and values of the positions seen so far, per layer, so each new token attends to the past
//! without recomputing it. Stored per KV head as `[position][head_dim]` so one head's keys are
//! contiguous for the attention loop.

use crate::model::Config;

pub struct LayerCache {
    /// `n_head_kv × n_ctx × head_dim_k`.
    pub k: Vec<f32>,
    /// `n_head_kv × n_ctx × head_dim_v`.
    pub v: Vec<f32>,
}

impl LayerCache {
    /// Room for `n_ctx` positions of one layer.
    pub fn new(c: &Config, n_ctx: usize) -> LayerCache {
        LayerCache {
            k: vec![0.0; c.n_head_kv * n_ctx * c.head_dim_k],
            v: vec![0.0; c.n_head_kv * n_ctx * c.head_dim_v],
        }
    }

    /// Writes the K and V rows (`n_tokens × n_head_kv·head_dim`) at positions
    /// `start .. start + n_tokens` of a cache of `n_ctx` positions.
    pub(crate) fn store(
        &mut self,
        k: &[f32],
        v: &[f32],
        n_tokens: usize,
        start: usize,
        c: &Config,
        n_ctx: usize,
    ) {
        let (hk, hv, n_kv) = (c.head_dim_k, c.head_dim_v, c.n_head_kv);
        for t in 0..n_tokens {
            let pos = start + t;
            for h in 0..n_kv {
                let src = &k[(t * n_kv + h) * hk..][..hk];
                self.k[(h * n_ctx + pos) * hk..][..hk].copy_from_slice(src);
                let src = &v[(t * n_kv + h) * hv..][..hv];
                self.v[(h * n_ctx + pos) * hv..][..hv].copy_from_slice(src);
            }
        }
    }
}

pub struct KvCache {
    n_ctx: usize,
    len: usize,
    pub(crate) layers: Vec<LayerCache>,
}

impl KvCache {
    pub fn new(c: &Config, n_ctx: usize) -> KvCache {
        let layers = (0..c.n_layer).map(|_| LayerCache::new(c, n_ctx)).collect();
        KvCache {
            n_ctx,
            len: 0,
            layers,
        }
    }

    /// Positions held (the position the next token gets).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Forgets everything; the buffers are kept for the next sequence.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
