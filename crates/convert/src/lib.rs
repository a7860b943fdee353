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
//!
//! Decisions a user may notice:
//! - `tokenizer.ggml.pre` is chosen from the pre-tokenizer definition in tokenizer.json (and the
//!   model name for SmolLM), not from llama.cpp's hash of a test tokenization.
//! - Export writes `tokenizer.model` for SentencePiece vocabularies (exact scores and types) next
//!   to a BPE tokenizer.json, and keeps the GGUF's `general.*` keys in config.json under
//!   `lowbit_gguf_general`, so GGUF → HF → GGUF restores the same metadata.
//! - Export defaults to f32 safetensors: dequantized values are then kept exactly.
//! - LLaMA 3 `rope_freqs` is exported as `rope_scaling` with the LLaMA 3.1 constants and the
//!   tensor's largest factor.

pub mod arch;
pub mod compressed_tensors;
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
pub use export::{
    export_hf, export_hf_with, gguf_to_hf, ExportDtype, ExportSummary, HfExport, HfTensorPlan,
    QuantizedExport,
};
pub use hf_dir::{hf_to_gguf_plan, HfFolder};
pub use plan::{plan_hf_to_gguf, ConversionPlan, GeneratedTensor, TensorPlan};
pub use transform::Transform;
pub use value::{MetaValue, Metadata};
pub use write_gguf::write_gguf_f32;
