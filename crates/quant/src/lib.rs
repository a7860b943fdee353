//! # lowbit-quant
//!
//! Turns a model into a quantized model: which tensor gets which type (preset mixes, overrides,
//! fallbacks for rows that do not fit a block size), the method that produces the blocks, and the
//! report of what it cost.
