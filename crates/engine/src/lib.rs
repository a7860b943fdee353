//! # lowbit-engine
//!
//! Runs the models lowbit makes, on the CPU, to measure what quantization cost: perplexity, KL
//! divergence and top-1 agreement against the original, and tokens per second. Weights are used in
//! place from the file's memory map in their stored block type; matrix products run directly on
//! the quantized blocks ([`kernels`]).

pub mod bench;
pub mod bert;
pub mod eval;
pub mod kernels;
pub mod kv_cache;
pub mod model;
pub mod sampler;
pub mod tensor;
pub mod tokenizer;

pub use kv_cache::KvCache;
pub use model::{Model, ModelError};
pub use tensor::QMatrix;
