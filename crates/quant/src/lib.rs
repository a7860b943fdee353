//! # lowbit-quant
//!
//! Turns a model into a quantized model: which tensor gets which type (preset mixes, overrides,
//! fallbacks for rows that do not split into whole blocks), the method that produces the blocks,
//! and the report of what it cost.

pub mod pipeline;
pub mod plan;
pub mod preset;
pub mod role;
pub mod sources;
pub mod tensor;

pub use plan::{plan, ModelFacts, PlanOptions, TensorDesc, TensorPlan};
pub use preset::Preset;
