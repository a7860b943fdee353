//! # lowbit-convert
//!
//! Model-family knowledge for moving between Hugging Face folders and GGUF: tensor names,
//! layout transforms, hyper-parameters and tokenizers for LLaMA (incl. Mistral, SmolLM),
//! Qwen 2/3 and Gemma 3. The file formats themselves live in `lowbit-files`; this crate decides
//! *what* goes where.

pub mod arch;
mod error;
pub mod hparams;
pub mod names;
pub mod tokenizer;
pub mod transform;
pub mod value;

pub use arch::Arch;
pub use error::{ConvertError, Result};
pub use transform::Transform;
pub use value::{MetaValue, Metadata};
