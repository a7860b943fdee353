//! # lowbit-formats
//!
//! Numeric formats and nothing else: how a row of reals becomes bytes and back. No file I/O, no
//! threads, no global state, so every function here can be tested on a handful of numbers and
//! reused by the file readers, the quantization methods and the engine alike.
//!
//! - [`GgmlType`]: ids, names and block geometry of every GGUF tensor type.
//! - [`BlockFormat`]: the one trait every block type implements; [`block_format`] finds it.
//! - [`grid`]: fixed-scale encoding — fit a row's scales, then set its codes one by one (GPTQ).

pub mod affine;
pub mod block;
mod blockwise;
mod error;
pub mod fallback;
pub mod float;
pub mod fp8;
pub mod grid;
pub mod iq4;
pub mod iq_grid;
pub mod kquants;
pub mod legacy;
pub mod metrics;
pub mod mxfp4;
pub mod registry;
pub mod search;
pub mod ternary;
#[cfg(test)]
mod test_util;
mod types;

pub use block::BlockFormat;
pub use error::FormatError;
pub use registry::block_format;
pub use types::GgmlType;
