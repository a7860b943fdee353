//! One transformer layer as six stages, each a step a caller can take on hidden states it holds.
//!
//! [`Model::forward`](super::Model::forward) runs them back to back for every layer; a
//! calibration driver runs them one layer at a time over its windows, looks at the input of each
//! linear product between stages, quantizes that product's weights and replaces them
//! ([`Model::set_linear`]) before the next stage reads them. Both paths are the same code, so a
//! layer calibrated step by step computes exactly what the forward pass will.
//!
//! ```text
//! x ─ attn_input ─ h ─ attn_mix (q,k,v, attention) ─ att ─ attn_output (o, +x) ─ x'
//! x' ─ ffn_input ─ h' ─ ffn_hidden (gate, up, GLU) ─ act ─ ffn_output (down, +x') ─ x''
//! ```
//!
//! Every stage runs its products on the current rayon pool; call them from inside it
//! (`pool.install`) so the parallel steps fork instead of being injected from outside.

use super::attention::{attend, AttnShape};
use super::config::Arch;
use super::error::{ModelError, Result};
use super::ops::{self, Rope};
use super::weights::{InputSite, LayerWeights, LinearId, NormId};
use super::Model;
use crate::kernels::matmul_with;
use crate::kv_cache::LayerCache;
use crate::tensor::Matrix;
use lowbit_formats::block_format;
use rayon::prelude::*;

/// Sees the input rows of linear products during a pass ([`Model::forward_observed`]).
pub trait LinearObserver: Send {
    /// `x` holds `n_tokens` rows, each the input of every linear of `site` in layer `layer`
    /// (for [`InputSite::Head`](super::InputSite::Head), `layer` is the number of layers).
    fn observe(&mut self, layer: usize, site: super::InputSite, x: &[f32], n_tokens: usize);
}

/// Rotary tables for a run of positions (global and, for Gemma-3, sliding-window layers).
pub(crate) struct Ropes {
    global: Rope,
    swa: Option<Rope>,
}

impl Model<'_> {
    pub(crate) fn ropes(&self, pos0: usize, n: usize) -> Ropes {
        let c = &self.config;
        Ropes {
            global: Rope::new(pos0..pos0 + n, c.n_rot, c.rope_base),
            swa: (c.sliding_window.is_some() && c.rope_base_swa != c.rope_base)
                .then(|| Rope::new(pos0..pos0 + n, c.n_rot, c.rope_base_swa)),
        }
    }

    /// Token embedding rows (Gemma multiplies by √n_embd); checks every id.
    pub fn embed_tokens(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let n_vocab = self.weights.n_vocab;
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ModelError::BadToken { token: bad, n_vocab });
        }
        let d = self.config.n_embd;
        let e = &self.weights.token_embd;
        let fmt = block_format(e.ty).expect("embedding type checked at load");
        let scale = (self.config.arch == Arch::Gemma3).then(|| (d as f32).sqrt());
        let mut x = vec![0f32; tokens.len() * d];
        x.par_chunks_mut(d)
            .zip(tokens.par_iter())
            .for_each(|(row, &t)| {
                fmt.dequantize_row(e.q().row(t as usize), row)
                    .expect("row geometry checked at load");
                if let Some(s) = scale {
                    row.iter_mut().for_each(|v| *v *= s);
                }
            });
        Ok(x)
    }

    /// Stage 1: the normed residual stream entering attention (the input of Q, K, V).
    pub fn attn_input(&self, il: usize, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        ops::rms_norm_rows(&mut h, &self.weights.layers[il].attn_norm, self.config.rms_eps);
        h
    }

    /// Stage 2 on a window of its own (positions `0..n`, no cache kept): Q, K, V, rope and
    /// causal attention; returns the heads' output, the input of O.
    pub fn attn_mix(&self, il: usize, h: &[f32], n: usize) -> Vec<f32> {
        let c = &self.config;
        let mut layer = LayerCache::new(c, n);
        self.attn_mix_cached(il, h, n, &mut layer, n, 0, &self.ropes(0, n))
    }

    /// Stage 2 against a cache holding positions `0..pos0` of an `n_ctx`-long sequence; stores
    /// this batch's keys and values at `pos0..pos0 + n`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attn_mix_cached(
        &self,
        il: usize,
        h: &[f32],
        n: usize,
        cache: &mut LayerCache,
        n_ctx: usize,
        pos0: usize,
        ropes: &Ropes,
    ) -> Vec<f32> {
        let c = &self.config;
        let lw = &self.weights.layers[il];
        let (q_dim, k_dim, v_dim) = (
            c.n_head * c.head_dim_k,
            c.n_head_kv * c.head_dim_k,
            c.n_head_kv * c.head_dim_v,
        );
        let h = &self.site_input(il, InputSite::AttnIn, h, n);
        let mut q = vec![0f32; n * q_dim];
        let mut k = vec![0f32; n * k_dim];
        let mut v = vec![0f32; n * v_dim];
        // Independent products share one parallel region (work-stealing across all three)
        // instead of three, each ending in a barrier: that matters for single tokens.
        rayon::join(
            || self.linear_product(il, LinearId::Q, h, n, &mut q),
            || {
                rayon::join(
                    || self.linear_product(il, LinearId::K, h, n, &mut k),
                    || self.linear_product(il, LinearId::V, h, n, &mut v),
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
        let rope = match (&ropes.swa, c.is_swa(il)) {
            (Some(r), true) => r,
            _ => &ropes.global,
        };
        let neox = c.arch.rope_neox();
        rope.apply(&mut q, c.n_head, c.head_dim_k, neox);
        rope.apply(&mut k, c.n_head_kv, c.head_dim_k, neox);
        ops::scale_in_place(&mut q, c.attn_scale);
        cache.store(&k, &v, n, pos0, c, n_ctx);
        let shape = AttnShape {
            n_head: c.n_head,
            n_head_kv: c.n_head_kv,
            head_dim_k: c.head_dim_k,
            head_dim_v: c.head_dim_v,
            n_ctx,
            pos0,
            window: if c.is_swa(il) { c.sliding_window } else { None },
        };
        let mut att = vec![0f32; n * c.n_head * c.head_dim_v];
        attend(&q, cache, &shape, &mut att);
        att
    }

    /// Stage 3: O (and Gemma's post-attention norm), added into the residual stream `x`.
    pub fn attn_output(&self, il: usize, att: &[f32], x: &mut [f32], n: usize) {
        let lw = &self.weights.layers[il];
        let att = &self.site_input(il, InputSite::AttnOut, att, n);
        let mut o = vec![0f32; n * self.config.n_embd];
        self.linear_product(il, LinearId::O, att, n, &mut o);
        if let Some(g) = &lw.post_attn_norm {
            ops::rms_norm_rows(&mut o, g, self.config.rms_eps);
        }
        ops::add_in_place(x, &o);
    }

    /// Stage 4: the normed residual stream entering the MLP (the input of gate and up).
    pub fn ffn_input(&self, il: usize, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        ops::rms_norm_rows(&mut h, &self.weights.layers[il].ffn_norm, self.config.rms_eps);
        h
    }

    /// Stage 5: gate and up, combined by the gated activation (SiLU, or GELU for Gemma): the
    /// input of down.
    pub fn ffn_hidden(&self, il: usize, h: &[f32], n: usize) -> Vec<f32> {
        let n_ff = self.weights.n_ff;
        let h = &self.site_input(il, InputSite::FfnIn, h, n);
        let mut gate = vec![0f32; n * n_ff];
        let mut up = vec![0f32; n * n_ff];
        rayon::join(
            || self.linear_product(il, LinearId::Gate, h, n, &mut gate),
            || self.linear_product(il, LinearId::Up, h, n, &mut up),
        );
        let act = if self.config.arch == Arch::Gemma3 {
            ops::GateAct::GeluTanh
        } else {
            ops::GateAct::Silu
        };
        ops::glu_in_place(&mut gate, &up, act);
        gate
    }

    /// Stage 6: down (and Gemma's post-MLP norm), added into the residual stream `x`.
    pub fn ffn_output(&self, il: usize, act: &[f32], x: &mut [f32], n: usize) {
        let lw = &self.weights.layers[il];
        let act = &self.site_input(il, InputSite::FfnOut, act, n);
        let mut o = vec![0f32; n * self.config.n_embd];
        self.linear_product(il, LinearId::Down, act, n, &mut o);
        if let Some(g) = &lw.post_ffn_norm {
            ops::rms_norm_rows(&mut o, g, self.config.rms_eps);
        }
        ops::add_in_place(x, &o);
    }

    /// The final normed hidden states (the LM head's input).
    pub fn head_input(&self, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        ops::rms_norm_rows(&mut h, &self.weights.output_norm, self.config.rms_eps);
        h
    }

    /// The LM head: `n` rows of logits.
    pub fn logits(&self, h: &[f32], n: usize) -> Vec<f32> {
        let w = &self.weights;
        let mut logits = vec![0f32; n * w.n_vocab];
        if n > 0 {
            match self.site_input(self.config.n_layer, InputSite::Head, h, n) {
                super::input_quant::SiteRows::Float(h) => matmul_with(&self.matmul, &w.output().q(), &h, n, &mut logits),
                super::input_quant::SiteRows::Int8(_) => unreachable!("the head has no int8 weights"),
            }
        }
        logits
    }

    /// Replaces a linear of layer `il` by another matrix of the same shape (e.g. its quantized
    /// version, owned); the next stage or pass uses it.
    pub fn set_linear(&mut self, il: usize, id: LinearId, m: Matrix<'_>) -> Result<()> {
        let name = id.tensor_name(il);
        let layer = layer_mut(&mut self.weights.layers, il, &name)?;
        layer.int8.remove(&id);
        replace(layer.linear_mut(id), m, name)
    }

    /// Replaces a norm's weights of layer `il` (a scale folded into it, as AWQ does).
    pub fn set_norm(&mut self, il: usize, id: NormId, w: Vec<f32>) -> Result<()> {
        let layer = layer_mut(&mut self.weights.layers, il, &id.tensor_name(il))?;
        let slot = layer.norm_mut(id);
        if slot.len() != w.len() {
            return Err(ModelError::WrongShape {
                name: id.tensor_name(il),
                expected: vec![slot.len() as u64],
                found: vec![w.len() as u64],
            });
        }
        *slot = w;
        Ok(())
    }

    /// Replaces the LM head (the embedding too when they are tied).
    pub fn set_output(&mut self, m: Matrix<'_>) -> Result<()> {
        let w = &mut self.weights;
        replace(w.output.as_mut().unwrap_or(&mut w.token_embd), m, "output.weight".into())
    }

    /// Replaces the token embedding (the LM head too when they are tied).
    pub fn set_embedding(&mut self, m: Matrix<'_>) -> Result<()> {
        replace(&mut self.weights.token_embd, m, "token_embd.weight".into())
    }

    /// A cache for one layer's window, used by [`Model::attn_mix`]; exposed for callers that
    /// step a layer over several batches of one sequence.
    pub fn new_layer_cache(&self, n_ctx: usize) -> LayerCache {
        LayerCache::new(&self.config, n_ctx)
    }
}

impl<'a> Model<'a> {
    /// Puts `m` in place of a linear of layer `il` and returns the matrix it replaced, neither
    /// copied: for measuring a model with one matrix changed, then putting it back. The
    /// linear's int8 form (W8A8) is dropped and not restored by swapping back.
    pub fn swap_linear(&mut self, il: usize, id: LinearId, m: Matrix<'a>) -> Result<Matrix<'a>> {
        let name = id.tensor_name(il);
        let layer = layer_mut(&mut self.weights.layers, il, &name)?;
        layer.int8.remove(&id);
        swap(layer.linear_mut(id), m, name)
    }

    /// [`swap_linear`](Self::swap_linear) for the LM head (the embedding too when tied).
    pub fn swap_output(&mut self, m: Matrix<'a>) -> Result<Matrix<'a>> {
        let w = &mut self.weights;
        swap(w.output.as_mut().unwrap_or(&mut w.token_embd), m, "output.weight".into())
    }
}

fn layer_mut<'w, 'a>(
    layers: &'w mut [LayerWeights<'a>],
    il: usize,
    name: &str,
) -> Result<&'w mut LayerWeights<'a>> {
    layers.get_mut(il).ok_or_else(|| ModelError::MissingTensor(name.to_string()))
}

/// An error unless `m` has the shape of the matrix in `slot`.
fn same_shape(slot: &Matrix<'_>, m: &Matrix<'_>, name: String) -> Result<()> {
    if (m.rows, m.cols) != (slot.rows, slot.cols) {
        return Err(ModelError::WrongShape {
            name,
            expected: vec![slot.cols as u64, slot.rows as u64],
            found: vec![m.cols as u64, m.rows as u64],
        });
    }
    Ok(())
}

fn swap<'a>(slot: &mut Matrix<'a>, m: Matrix<'a>, name: String) -> Result<Matrix<'a>> {
    same_shape(slot, &m, name)?;
    Ok(std::mem::replace(slot, m))
}

/// Puts `m` (owned from here on) in `slot` when the shapes agree.
fn replace<'a>(slot: &mut Matrix<'a>, m: Matrix<'_>, name: String) -> Result<()> {
    same_shape(slot, &m, name)?;
    *slot = Matrix {
        ty: m.ty,
        rows: m.rows,
        cols: m.cols,
        data: std::borrow::Cow::Owned(m.data.into_owned()),
    };
    Ok(())
}
