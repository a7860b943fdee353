//! Adapters from the file formats to the pipeline's [`crate::pipeline::SourceModel`].

pub mod gguf;
pub mod hf;
pub mod model_file;
