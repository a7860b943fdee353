//! Perplexity as llama-perplexity defines it: the token stream is cut into chunks of `n_ctx`,
//! each chunk is evaluated from an empty cache (its first token replaced by BOS when the
//! vocabulary adds one), and only the second half of every window is scored, so each prediction
//! has at least `n_ctx/2` tokens of context.

use super::error::EvalError;
use super::logits_file::{Header, LogitsReader, LogitsWriter};
use super::stats::{score_position, Estimate, KldReport, KldStats, PositionStats};
use crate::model::Model;
use rayon::prelude::*;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub n_ctx: usize,
    /// At most this many chunks (all that fit when `None`).
    pub max_chunks: Option<usize>,
    /// The BOS id when the vocabulary adds one (`tokenizer.ggml.add_bos_token`).
    pub bos: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    pub n_ctx: usize,
    pub n_chunk: usize,
    /// First position whose logits are kept (`n_ctx / 2`).
    pub first: usize,
    /// Positions scored per chunk (`n_ctx - 1 - first`: the last position has no next token).
    pub scored: usize,
}

impl ChunkPlan {
    pub fn new(
        n_tokens: usize,
        n_ctx: usize,
        max_chunks: Option<usize>,
    ) -> Result<ChunkPlan, EvalError> {
        if n_ctx < 4 {
            return Err(EvalError::ContextTooSmall(n_ctx));
        }
        if n_tokens < 2 * n_ctx {
            return Err(EvalError::TooFewTokens {
                have: n_tokens,
                need: 2 * n_ctx,
                n_ctx,
            });
        }
        let all = n_tokens / n_ctx;
        let n_chunk = max_chunks.map_or(all, |m| m.clamp(1, all));
        let first = n_ctx / 2;
        Ok(ChunkPlan {
            n_ctx,
            n_chunk,
            first,
            scored: n_ctx - 1 - first,
        })
    }
}

/// Running figures after each chunk, for a progress display.
#[derive(Clone, Debug)]
pub struct ChunkReport {
    /// Chunks done (1-based).
    pub chunk: usize,
    pub n_chunk: usize,
    pub ppl: Estimate,
    pub kld: Option<Estimate>,
    pub same_top: Option<Estimate>,
}

#[derive(Clone, Debug)]
pub struct EvalReport {
    pub n_ctx: usize,
    pub n_chunk: usize,
    /// Scored positions.
    pub count: usize,
    pub ppl: Estimate,
    /// Present when evaluated against base log-probabilities.
    pub kld: Option<KldReport>,
}

/// Evaluates `tokens` (the whole text, tokenized with BOS as the vocabulary asks). `save_logits`
/// writes this run's log-probabilities as a base for later runs; `kld_base` compares against one.
pub fn evaluate(
    model: &Model,
    tokens: &[u32],
    opts: &EvalOptions,
    save_logits: Option<&Path>,
    kld_base: Option<&Path>,
    progress: &mut dyn FnMut(&ChunkReport),
) -> Result<EvalReport, EvalError> {
    let mut plan = ChunkPlan::new(tokens.len(), opts.n_ctx, opts.max_chunks)?;
    let n_vocab = model.n_vocab();
    let mut base = match kld_base {
        Some(p) => Some(open_base(p, &mut plan, tokens, n_vocab)?),
        None => None,
    };
    let mut writer = match save_logits {
        Some(p) => {
            let h = Header {
                n_ctx: plan.n_ctx,
                n_vocab,
                n_chunk: plan.n_chunk,
                f16: true,
                scored: plan.scored,
            };
            Some(LogitsWriter::create(
                p,
                &h,
                &tokens[..plan.n_chunk * plan.n_ctx],
            )?)
        }
        None => None,
    };
    let mut cache = model.new_cache(plan.n_ctx);
    let mut stats = KldStats::default();
    let mut base_buf = Vec::new();
    let mut save_buf = vec![
        0f32;
        if writer.is_some() {
            plan.scored * n_vocab
        } else {
            0
        }
    ];
    let mut chunk = vec![0u32; plan.n_ctx];
    for c in 0..plan.n_chunk {
        let start = c * plan.n_ctx;
        chunk.copy_from_slice(&tokens[start..start + plan.n_ctx]);
        if let Some(b) = opts.bos {
            chunk[0] = b;
        }
        cache.clear();
        let logits = model.forward(&chunk, &mut cache, plan.first)?;
        if let Some(r) = base.as_mut() {
            r.read(plan.scored, &mut base_buf)?;
        }
        let targets = &tokens[start + plan.first + 1..start + plan.n_ctx];
        let scores: Vec<PositionStats> = if writer.is_some() {
            logits
                .par_chunks(n_vocab)
                .zip(save_buf.par_chunks_mut(n_vocab))
                .zip(targets.par_iter())
                .map(|((l, s), &t)| score_position(l, t as usize, None, Some(s)))
                .collect()
        } else if base.is_some() {
            logits
                .par_chunks(n_vocab)
                .zip(base_buf.par_chunks(n_vocab))
                .zip(targets.par_iter())
                .map(|((l, b), &t)| score_position(l, t as usize, Some(b), None))
                .collect()
        } else {
            logits
                .par_chunks(n_vocab)
                .zip(targets.par_iter())
                .map(|(l, &t)| score_position(l, t as usize, None, None))
                .collect()
        };
        if let Some(w) = writer.as_mut() {
            for row in save_buf.chunks(n_vocab) {
                w.push(row)?;
            }
        }
        for s in &scores {
            stats.add(s, base.is_some());
        }
        progress(&ChunkReport {
            chunk: c + 1,
            n_chunk: plan.n_chunk,
            ppl: stats.ppl(),
            kld: base.is_some().then(|| stats.mean_kld()),
            same_top: base.is_some().then(|| stats.same_top()),
        });
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(EvalReport {
        n_ctx: plan.n_ctx,
        n_chunk: plan.n_chunk,
        count: stats.count,
        ppl: stats.ppl(),
        kld: base.is_some().then(|| stats.kld_report()),
    })
}

/// Opens a base file and checks it was made from the same text, context and vocabulary; a base
/// with fewer chunks limits the run to them.
fn open_base(
    path: &Path,
    plan: &mut ChunkPlan,
    tokens: &[u32],
    n_vocab: usize,
) -> Result<LogitsReader, EvalError> {
    let r = LogitsReader::open(path)?;
    let h = &r.header;
    if h.n_ctx != plan.n_ctx {
        return Err(EvalError::Mismatch(format!(
            "saved with a context of {}, this run uses {}",
            h.n_ctx, plan.n_ctx
        )));
    }
    if h.n_vocab != n_vocab {
        return Err(EvalError::Mismatch(format!(
            "vocabulary of {} tokens, this model has {n_vocab}",
            h.n_vocab
        )));
    }
    plan.n_chunk = plan.n_chunk.min(h.n_chunk);
    let n = plan.n_chunk * plan.n_ctx;
    if r.tokens[..n] != tokens[..n] {
        return Err(EvalError::Mismatch(
            "the text tokenizes differently (another file or tokenizer?)".into(),
        ));
    }
    Ok(r)
}
