//! Evaluation: perplexity over a tokenized text as llama-perplexity computes it, and the KL
//! divergence of a model's next-token distributions against saved base log-probabilities.

mod error;
pub mod logits_file;
mod perplexity;
mod stats;

pub use error::EvalError;
pub use logits_file::{LogitsReader, LogitsWriter};
pub use perplexity::{evaluate, ChunkPlan, ChunkReport, EvalOptions, EvalReport};
pub use stats::{score_position, Estimate, KldReport, KldStats, Percentiles, PositionStats};
