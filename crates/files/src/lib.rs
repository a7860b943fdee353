//! # lowbit-files
//!
//! Bytes on disk: reading and writing GGUF, safetensors and Hugging Face model folders, and
//! llama.cpp's importance-matrix files. Everything read from a file is validated against the file's
//! own length before any allocation, so a hostile header cannot make lowbit allocate more than the
//! file holds.

mod atomic;
mod error;
pub mod gguf;
pub mod safetensors;

pub use atomic::{same_file, AtomicFile};
pub use error::{FileError, Result, TensorProblem};
pub use gguf::{Array, GgufFile, GgufWriter, StrArray, TensorInfo, TensorSpec, Value, ValueType};
pub use safetensors::{Dtype, SafeTensorInfo, SafeTensorSpec, SafetensorsFile, SafetensorsWriter};
