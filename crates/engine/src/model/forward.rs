//! The forward pass: a batch of tokens at consecutive positions in, logits out. The same code
//! serves prompt processing (many tokens) and generation (one token); every matrix product goes
//! through [`crate::kernels::matmul_with`] with the model's [`MatmulOptions`](crate::kernels::MatmulOptions).

use super::attention::{attend, AttnShape};
use super::config::Arch;
use super::error::{ModelError, Result};
use super::ops::{self, Rope};
use super::Model;
use crate::kernels::matmul_with;
use crate::kv_cache::KvCache;
use lowbit_formats::block_format;
use rayon::prelude::*;

impl Model<'_> {
    /// Runs `tokens` at positions `cache.len() ..`, appending them to the cache, and returns the
    /// logits (`n_vocab` per token) of `tokens[first_output..]` only: perplexity needs the second
    /// half of a window, generation only the last token, and the LM head is the largest product.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        first_output: usize,
    ) -> Result<Vec<f32>> {
        // Run the whole pass on a pool thread. Called from outside the pool, every parallel step
        // would be injected into it while this thread blocks on a condition variable — hundreds
        // of cross-thread wake-ups per generated token. From inside, each step is a cheap fork.
        if rayon::current_thread_index().is_none() {
            return rayon::scope(|_| self.forward_on_pool(tokens, cache, first_output));
        }
        self.forward_on_pool(tokens, cache, first_output)
    }

    fn forward_on_pool(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        first_output: usize,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let w = &self.weights;
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::NoTokens);
        }
        let pos0 = cache.len();
        if pos0 + n > cache.n_ctx() {
            return Err(ModelError::ContextFull {
                needed: pos0 + n,
                n_ctx: cache.n_ctx(),
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= w.n_vocab) {
            return Err(ModelError::BadToken {
                token: bad,
                n_vocab: w.n_vocab,
            });
        }
        let first_output = first_output.min(n);
        let d = c.n_embd;

        let mut x = self.embed(tokens);
        let (q_dim, k_dim, v_dim) = (
            c.n_head * c.head_dim_k,
            c.n_head_kv * c.head_dim_k,
            c.n_head_kv * c.head_dim_v,
        );
        let mut h = vec![0f32; n * d];
        let mut q = vec![0f32; n * q_dim];
        let mut k = vec![0f32; n * k_dim];
        let mut v = vec![0f32; n * v_dim];
        let mut att = vec![0f32; n * c.n_head * c.head_dim_v];
        let mut o = vec![0f32; n * d];
        let mut gate = vec![0f32; n * w.n_ff];
        let mut up = vec![0f32; n * w.n_ff];
        let rope_global = Rope::new(pos0..pos0 + n, c.n_rot, c.rope_base);
        let rope_swa = (c.sliding_window.is_some() && c.rope_base_swa != c.rope_base)
            .then(|| Rope::new(pos0..pos0 + n, c.n_rot, c.rope_base_swa));
        let neox = c.arch.rope_neox();
        let act = if c.arch == Arch::Gemma3 {
            ops::GateAct::GeluTanh
        } else {
            ops::GateAct::Silu
        };

        for (il, lw) in w.layers.iter().enumerate() {
            h.copy_from_slice(&x);
            ops::rms_norm_rows(&mut h, &lw.attn_norm, c.rms_eps);
            // Independent products share one parallel region (work-stealing across all three)
            // instead of three, each ending in a barrier: that matters for single tokens.
            let mm = &self.matmul;
            rayon::join(
                || matmul_with(mm, &lw.wq, &h, n, &mut q),
                || {
                    rayon::join(
                        || matmul_with(mm, &lw.wk, &h, n, &mut k),
                        || matmul_with(mm, &lw.wv, &h, n, &mut v),
                    )
                },
            );
            if let Some(b) = &lw.bq {
                ops::add_bias_rows(&mut q, b);
            }
            if let Some(b) = &lw.bk {
                ops::add_bias_rows(&mut k, b);
            }
            if let Some(b) = &lw.bv {
                ops::add_bias_rows(&mut v, b);
            }
            if let Some(g) = &lw.q_norm {
                ops::rms_norm_rows(&mut q, g, c.rms_eps);
            }
            if let Some(g) = &lw.k_norm {
                ops::rms_norm_rows(&mut k, g, c.rms_eps);
            }
            let rope = match (&rope_swa, c.is_swa(il)) {
                (Some(r), true) => r,
                _ => &rope_global,
            };
            rope.apply(&mut q, c.n_head, c.head_dim_k, neox);
            rope.apply(&mut k, c.n_head_kv, c.head_dim_k, neox);
            ops::scale_in_place(&mut q, c.attn_scale);
            cache.store(il, &k, &v, n);
            let shape = AttnShape {
                n_head: c.n_head,
                n_head_kv: c.n_head_kv,
                head_dim_k: c.head_dim_k,
                head_dim_v: c.head_dim_v,
                n_ctx: cache.n_ctx(),
                pos0,
                window: if c.is_swa(il) { c.sliding_window } else { None },
            };
            attend(&q, &cache.layers[il], &shape, &mut att);
            matmul_with(&self.matmul, &lw.wo, &att, n, &mut o);
            if let Some(g) = &lw.post_attn_norm {
                ops::rms_norm_rows(&mut o, g, c.rms_eps);
            }
            ops::add_in_place(&mut x, &o);

            h.copy_from_slice(&x);
            ops::rms_norm_rows(&mut h, &lw.ffn_norm, c.rms_eps);
            rayon::join(
                || matmul_with(mm, &lw.ffn_gate, &h, n, &mut gate),
                || matmul_with(mm, &lw.ffn_up, &h, n, &mut up),
            );
            ops::glu_in_place(&mut gate, &up, act);
            matmul_with(&self.matmul, &lw.ffn_down, &gate, n, &mut o);
            if let Some(g) = &lw.post_ffn_norm {
                ops::rms_norm_rows(&mut o, g, c.rms_eps);
            }
            ops::add_in_place(&mut x, &o);
        }
        cache.advance(n);

        let n_out = n - first_output;
        let mut last = x.split_off(first_output * d);
        ops::rms_norm_rows(&mut last, &w.output_norm, c.rms_eps);
        let mut logits = vec![0f32; n_out * w.n_vocab];
        if n_out > 0 {
            matmul_with(&self.matmul, &w.output, &last, n_out, &mut logits);
        }
        Ok(logits)
    }

    /// Token embedding rows, dequantized one row per token (Gemma multiplies by √n_embd).
    fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        let d = self.config.n_embd;
        let e = &self.weights.token_embd;
        let fmt = block_format(e.ty).expect("embedding type checked at load");
        let scale = (self.config.arch == Arch::Gemma3).then(|| (d as f32).sqrt());
        let mut x = vec![0f32; tokens.len() * d];
        x.par_chunks_mut(d)
            .zip(tokens.par_iter())
            .for_each(|(row, &t)| {
                fmt.dequantize_row(e.row(t as usize), row)
                    .expect("row geometry checked at load");
                if let Some(s) = scale {
                    row.iter_mut().for_each(|v| *v *= s);
                }
            });
        x
    }
}
