//! # lowbit-convert
//!
//! Model-family knowledge for moving between Hugging Face folders and GGUF: tensor names,
//! layout transforms, hyper-parameters and tokenizers for LLaMA (incl. Mistral, SmolLM),
//! Qwen 2/3 and Gemma 3. The file formats themselves live in `lowbit-files`; this crate decides
//! *what* goes where.
//!
//! - HF → GGUF: [`hf_to_gguf_plan`] gives a [`ConversionPlan`] (metadata + per-tensor name, dims
//!   and [`Transform`]); the quantize pipeline walks it. [`write_gguf_f32`] is the unquantized
//!   reference walk.
//! - GGUF → HF: [`export_hf`] writes a complete folder; [`gguf_to_hf`] is the plan behind it.

pub mod arch;
mod error;
pub mod export;
mod gguf_value;
pub mod hf_dir;
pub mod hparams;
pub mod names;
pub mod plan;
pub mod tokenizer;
pub mod transform;
pub mod value;
mod write_gguf;

pub use arch::Arch;
pub use error::{ConvertError, Result};
pub use export::{export_hf, gguf_to_hf, ExportDtype, ExportSummary, HfExport, HfTensorPlan};
pub use hf_dir::{hf_to_gguf_plan, HfFolder};
pub use plan::{plan_hf_to_gguf, ConversionPlan, GeneratedTensor, TensorPlan};
pub use transform::Transform;
pub use value::{MetaValue, Metadata};
pub use write_gguf::write_gguf_f32;
