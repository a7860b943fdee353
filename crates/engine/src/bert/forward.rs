//! The encoder forward pass over a packed batch.
//!
//! Sequences of different lengths are concatenated token after token instead of padded: every
//! matrix product runs on all real tokens of the batch at once, and attention for a token looks
//! only at the tokens of its own sequence. That is exactly what padding plus an attention mask
//! computes, without spending work on pad positions.

use super::config::{BertConfig, Pooling, SentenceConfig};
use super::error::{BertError, Result};
use super::ops::{gelu_in_place, l2_normalize, layer_norm};
use crate::kernels::cpu::{self, Level};
use crate::model::vmath;
use super::weights::{BertWeights, Layer, Linear, Norm};
use crate::kernels::int8::Int8Acts;
use crate::model::SiteRows;
use crate::model::{InputQuantizer, InputSite, LinearObserver};
use std::borrow::Cow;
use rayon::prelude::*;

/// Token states (`Σ lens × hidden`, sequences back to back) after the last layer.
pub fn encode(cfg: &BertConfig, w: &BertWeights, seqs: &[&[u32]]) -> Result<Vec<f32>> {
    encode_observed(cfg, w, seqs, None)
}

/// [`encode`], showing `observer` the input rows of every linear (sites as in the LLMs: the
/// stream before query/key/value, the context before the attention output, the stream before
/// the up projection, the GELU output before down) before `w.input_quant` rounds them.
pub fn encode_observed(
    cfg: &BertConfig,
    w: &BertWeights,
    seqs: &[&[u32]],
    mut observer: Option<&mut dyn LinearObserver>,
) -> Result<Vec<f32>> {
    let h = cfg.hidden;
    for s in seqs {
        if s.len() > cfg.max_positions {
            return Err(BertError::Input(format!(
                "{} tokens, the model takes at most {}",
                s.len(),
                cfg.max_positions
            )));
        }
        if let Some(&id) = s.iter().find(|&&id| id as usize >= w.word.rows) {
            return Err(BertError::Input(format!(
                "token id {id} is outside the {}-entry vocabulary",
                w.word.rows
            )));
        }
    }
    // Per token: its sequence's first token index and length.
    let mut span = Vec::new();
    let mut ids = Vec::new();
    for s in seqs {
        let start = ids.len();
        ids.extend_from_slice(s);
        span.extend(std::iter::repeat_n((start, s.len()), s.len()));
    }
    let n = ids.len();
    let mut x = vec![0f32; n * h];
    embed(w, &ids, &span, &mut x, h);
    norm_rows(&mut x, &w.emb_norm, cfg.eps, h);

    let mut bufs = Buffers::new(n, h, cfg.intermediate);
    for (il, layer) in w.layers.iter().enumerate() {
        let mut site = Site { il, quant: w.input_quant.as_deref(), observer: &mut observer, n };
        layer_forward(cfg, layer, &span, &mut x, &mut bufs, &mut site);
    }
    Ok(x)
}

/// word + position (within the sequence) + token type 0.
fn embed(w: &BertWeights, ids: &[u32], span: &[(usize, usize)], x: &mut [f32], h: usize) {
    x.par_chunks_mut(h).enumerate().for_each_init(
        || (vec![0f32; h], vec![0f32; h]),
        |(pos_row, type_row), (t, row)| {
            w.word.row_into(ids[t] as usize, row);
            w.position.row_into(t - span[t].0, pos_row);
            w.token_type.row_into(0, type_row);
            for ((v, p), ty) in row.iter_mut().zip(pos_row.iter()).zip(type_row.iter()) {
                *v += p + ty;
            }
        },
    );
}

fn norm_rows(x: &mut [f32], norm: &Norm, eps: f32, h: usize) {
    x.par_chunks_mut(h * 16)
        .for_each(|rows| layer_norm(rows, &norm.gamma, &norm.beta, eps));
}

struct Buffers {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    ffn: Vec<f32>,
}

impl Buffers {
    fn new(n: usize, h: usize, inter: usize) -> Buffers {
        let z = |len| vec![0f32; len];
        Buffers {
            q: z(n * h),
            k: z(n * h),
            v: z(n * h),
            ctx: z(n * h),
            tmp: z(n * h),
            ffn: z(n * inter),
        }
    }
}

/// What a layer's linear inputs meet: an observer, then an input quantizer.
struct Site<'a, 'o, 'b> {
    il: usize,
    quant: Option<&'a dyn InputQuantizer>,
    observer: &'o mut Option<&'b mut dyn LinearObserver>,
    n: usize,
}

impl Site<'_, '_, '_> {
    /// The rows the linears `feeds` read: int8 codes when they all hold int8 weights and the
    /// quantizer gives the site one int8 range per row, else float (fake-quantized) rows.
    fn input<'x>(&mut self, site: InputSite, x: &'x [f32], feeds: &[&Linear<'_>]) -> SiteRows<'x> {
        if let Some(o) = self.observer.as_deref_mut() {
            o.observe(self.il, site, x, self.n);
        }
        match self.quant {
            Some(q) if self.n > 0 => {
                let cols = x.len() / self.n;
                if let (true, Some(range)) = (feeds.iter().all(|l| l.int8.is_some()), q.int8_range(self.il, site)) {
                    return SiteRows::Int8(Int8Acts::quantize(x, self.n, cols, range));
                }
                let mut v = x.to_vec();
                q.quantize_rows(self.il, site, &mut v, cols);
                SiteRows::Float(Cow::Owned(v))
            }
            _ => SiteRows::Float(Cow::Borrowed(x)),
        }
    }
}

/// One post-LN block: `x = LN(x + Attn(x))`, then `x = LN(x + FFN(x))`.
fn layer_forward(
    cfg: &BertConfig,
    l: &Layer,
    span: &[(usize, usize)],
    x: &mut Vec<f32>,
    b: &mut Buffers,
    site: &mut Site<'_, '_, '_>,
) {
    let (h, n) = (cfg.hidden, span.len());
    let xin = site.input(InputSite::AttnIn, x, &[&l.query, &l.key, &l.value]);
    l.query.forward_rows(&xin, n, &mut b.q);
    l.key.forward_rows(&xin, n, &mut b.k);
    l.value.forward_rows(&xin, n, &mut b.v);
    drop(xin);
    attention(cfg, span, &b.q, &b.k, &b.v, &mut b.ctx);
    let ctx = site.input(InputSite::AttnOut, &b.ctx, &[&l.attn_out]);
    l.attn_out.forward_rows(&ctx, n, &mut b.tmp);
    drop(ctx);
    residual_norm(&mut b.tmp, x, &l.attn_norm, cfg.eps, h);
    std::mem::swap(x, &mut b.tmp);

    let xin = site.input(InputSite::FfnIn, x, &[&l.up]);
    l.up.forward_rows(&xin, n, &mut b.ffn);
    drop(xin);
    b.ffn
        .par_chunks_mut(4096)
        .for_each(gelu_in_place);
    let act = site.input(InputSite::FfnOut, &b.ffn, &[&l.down]);
    l.down.forward_rows(&act, n, &mut b.tmp);
    drop(act);
    residual_norm(&mut b.tmp, x, &l.out_norm, cfg.eps, h);
    std::mem::swap(x, &mut b.tmp);
}

/// `y = LN(y + x)` row by row.
fn residual_norm(y: &mut [f32], x: &[f32], norm: &Norm, eps: f32, h: usize) {
    y.par_chunks_mut(h * 16)
        .zip(x.par_chunks(h * 16))
        .for_each(|(yr, xr)| {
            yr.iter_mut().zip(xr).for_each(|(a, b)| *a += b);
            layer_norm(yr, &norm.gamma, &norm.beta, eps);
        });
}

/// Scaled dot-product attention, every head, each token against its own sequence only.
fn attention(
    cfg: &BertConfig,
    span: &[(usize, usize)],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    ctx: &mut [f32],
) {
    let wide = cpu::detected() >= Level::Avx2;
    ctx.par_chunks_mut(cfg.hidden)
        .enumerate()
        .for_each_init(Vec::new, |scores, (t, out)| {
            let a = TokenAttention { cfg, span: span[t], q, k, v };
            #[cfg(target_arch = "x86_64")]
            if wide {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                return unsafe { a.run_wide(t, scores, out) };
            }
            let _ = wide;
            a.run(t, scores, out)
        });
}

/// One token's attention over its sequence (`span` = start, length), all heads.
struct TokenAttention<'a> {
    cfg: &'a BertConfig,
    span: (usize, usize),
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
}

impl TokenAttention<'_> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_wide(&self, t: usize, scores: &mut Vec<f32>, out: &mut [f32]) {
        self.run(t, scores, out)
    }

    /// Plain loops (no iterator adaptors that become separate functions), so the AVX2 copy
    /// vectorises the dots, the exponentials and the value sums.
    #[inline(always)]
    fn run(&self, t: usize, scores: &mut Vec<f32>, out: &mut [f32]) {
        let (h, d) = (self.cfg.hidden, self.cfg.head_dim());
        let scale = 1.0 / (d as f32).sqrt();
        let (start, len) = self.span;
        scores.clear();
        scores.resize(len, 0f32);
        let qt = &self.q[t * h..(t + 1) * h];
        for head in 0..self.cfg.heads {
            let o = head * d;
            let qh = &qt[o..o + d];
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &self.k[(start + j) * h + o..][..d];
                *s = vmath::dot(qh, kj) * scale;
            }
            let inv = 1.0 / vmath::softmax_unnormalised(scores);
            let oh = &mut out[o..o + d];
            oh.fill(0.0);
            for (j, &p) in scores.iter().enumerate() {
                let vj = &self.v[(start + j) * h + o..][..d];
                vmath::axpy(oh, p * inv, vj);
            }
        }
    }
}

/// One vector per sequence from the packed token states.
pub fn pool(sc: &SentenceConfig, hidden: &[f32], lens: &[usize], h: usize) -> Vec<Vec<f32>> {
    let mut start = 0;
    lens.iter()
        .map(|&len| {
            let rows = &hidden[start * h..(start + len) * h];
            start += len;
            if len == 0 {
                return vec![0f32; h];
            }
            let mut v = match sc.pooling {
                Pooling::Cls => rows[..h].to_vec(),
                Pooling::Mean => {
                    let mut acc = vec![0f32; h];
                    rows.chunks_exact(h)
                        .for_each(|r| acc.iter_mut().zip(r).for_each(|(a, x)| *a += x));
                    let inv = 1.0 / len.max(1) as f32;
                    acc.iter_mut().for_each(|a| *a *= inv);
                    acc
                }
                Pooling::Max => {
                    let mut acc = vec![f32::NEG_INFINITY; h];
                    rows.chunks_exact(h)
                        .for_each(|r| acc.iter_mut().zip(r).for_each(|(a, x)| *a = a.max(*x)));
                    acc
                }
            };
            if sc.normalize {
                l2_normalize(&mut v);
            }
            v
        })
        .collect()
}
