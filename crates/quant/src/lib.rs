//! # lowbit-quant
//!
//! Turns a model into a quantized model: which tensor gets which type (preset mixes, overrides,
//! fallbacks for rows that do not split into whole blocks), the method that produces the blocks,
//! and the report of what it cost.

pub mod allocate;
mod error;
pub mod linalg;
pub mod methods;
pub mod pipeline;
pub mod plan;
pub mod preset;
pub mod report;
pub mod compare;
pub mod role;
pub mod sources;
pub mod stats;
pub mod target;
pub mod tensor;

pub use plan::{plan, ModelFacts, PlanOptions, TensorDesc, TensorPlan};
pub use error::QuantError;
pub use methods::{method_by_name, Method, MethodOptions, QuantOutcome, TensorJob};
pub use preset::Preset;
pub use stats::InputStats;
pub use target::Target;
