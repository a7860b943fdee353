//! GGUF: llama.cpp's single-file model format.
//!
//! Layout: magic, version, tensor count, key/value count, the key/value pairs, the tensor infos,
//! padding to the alignment, then the tensor data, each tensor at an aligned offset relative to
//! the start of the data section.

mod cursor;
mod reader;
mod tensor;
mod value;
mod writer;

pub use reader::GgufFile;
pub use tensor::{tensor_bytes, TensorInfo, TensorSpec, MAX_DIMS, MAX_NAME_LEN};
pub use value::{Array, StrArray, Value, ValueType};
pub use writer::{planned_size, GgufWriter, WRITE_VERSION};

pub const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment when `general.alignment` is absent (ggml's `GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
pub const KEY_ALIGNMENT: &str = "general.alignment";
