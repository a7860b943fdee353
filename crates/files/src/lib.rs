//! # lowbit-files
//!
//! Bytes on disk: reading and writing GGUF, safetensors and Hugging Face model folders, and
//! llama.cpp's importance-matrix files. Everything read from a file is validated against the file's
//! own length before any allocation, so a hostile header cannot make lowbit allocate more than the
//! file holds.
//!
//! - [`gguf`]: [`GgufFile`] (memory-mapped, zero-copy tensor data) and [`GgufWriter`] (streaming).
//! - [`safetensors`]: [`SafetensorsFile`] / [`SafetensorsWriter`].
//! - [`hf`]: [`HfModel`], a Hugging Face folder with one or more safetensors shards.
//! - [`imatrix`]: [`Imatrix`], both llama.cpp importance-matrix formats.
//! - [`AtomicFile`] / [`same_file`]: every writer goes through a temp file renamed into place.

mod atomic;
mod error;
pub mod gguf;
pub mod hf;
pub mod imatrix;
pub mod safetensors;

pub use atomic::{remove_unfinished_outputs, same_file, AtomicFile, UnfinishedGuard};
pub use error::{FileError, Result, TensorProblem};
pub use gguf::{Array, GgufFile, GgufWriter, StrArray, TensorInfo, TensorSpec, Value, ValueType};
pub use hf::HfModel;
pub use imatrix::{Imatrix, ImatrixEntry, ImatrixFormat};
pub use safetensors::{Dtype, SafeTensorInfo, SafeTensorSpec, SafetensorsFile, SafetensorsWriter};
