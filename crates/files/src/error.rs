//! One error type for every file lowbit touches.
//!
//! Every variant carries the path so a message printed three layers up still says which file was
//! bad; hostile-input variants carry the byte offset so the problem can be found with a hex dump.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = FileError> = std::result::Result<T, E>;

/// What is wrong with one GGUF tensor info; separate from [`FileError`] so tests and callers can
/// match on the exact problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorProblem {
    #[error("unknown tensor type id {0}")]
    UnknownType(u32),
    #[error("n_dims {0} is not in 1..=4")]
    NDims(u32),
    #[error("dimension {index} is zero")]
    ZeroDim { index: usize },
    #[error("element count or byte size overflows")]
    SizeOverflow,
    #[error("row length {ne0} is not a multiple of the {ty} block size {block}")]
    PartialBlock {
        ne0: u64,
        ty: &'static str,
        block: usize,
    },
    #[error("data offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned { offset: u64, alignment: u64 },
    #[error("data range {start}..{end} lies outside the {len}-byte data section")]
    OutOfFile { start: u64, end: u64, len: u64 },
    #[error("data overlaps tensor '{other}'")]
    Overlap { other: String },
    #[error("tensor name appears twice")]
    Duplicate,
    #[error("name is {len} bytes; llama.cpp allows at most 63")]
    NameTooLong { len: usize },
    #[error("expected {expected} bytes of data, got {got}")]
    DataLength { expected: u64, got: u64 },
    #[error(
        "tensor is not declared, or not the next one in declared order (expected '{expected}')"
    )]
    OutOfOrder { expected: String },
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {op}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("{path}: truncated: {what} needs {need} bytes at offset {offset} but only {left} remain", path = path.display())]
    Truncated {
        path: PathBuf,
        offset: u64,
        need: u64,
        left: u64,
        what: String,
    },

    /// A count or length in a header claims more data than the rest of the file can hold; this
    /// is checked before anything is allocated from it.
    #[error("{path}: {what} at offset {offset} declares {count} items, more than the {left} bytes left can hold", path = path.display())]
    CountTooLarge {
        path: PathBuf,
        offset: u64,
        what: String,
        count: u64,
        left: u64,
    },

    #[error("{path}: not a GGUF file (magic bytes {found:02x?})", path = path.display())]
    BadMagic { path: PathBuf, found: [u8; 4] },

    #[error("{path}: unsupported GGUF version {version}: {why}", path = path.display())]
    UnsupportedVersion {
        path: PathBuf,
        version: u32,
        why: &'static str,
    },

    #[error("{path}: key '{key}' at offset {offset}: unknown value type id {type_id}", path = path.display())]
    BadValueType {
        path: PathBuf,
        offset: u64,
        key: String,
        type_id: u32,
    },

    #[error("{path}: duplicate metadata key '{key}'", path = path.display())]
    DuplicateKey { path: PathBuf, key: String },

    #[error("{path}: metadata key '{key}' is missing", path = path.display())]
    MissingKey { path: PathBuf, key: String },

    #[error("{path}: metadata key '{key}' is {found}, expected {expected}", path = path.display())]
    WrongType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        found: &'static str,
    },

    #[error("{path}: general.alignment {value} must be a nonzero power of two", path = path.display())]
    BadAlignment { path: PathBuf, value: u64 },

    #[error("{path}: tensor '{tensor}': {problem}", path = path.display())]
    Tensor {
        path: PathBuf,
        tensor: String,
        problem: TensorProblem,
    },

    #[error("{path}: tensor '{tensor}' not found", path = path.display())]
    MissingTensor { path: PathBuf, tensor: String },

    /// Data handed to a writer that cannot be stored (no file involved yet).
    #[error("{0}")]
    InvalidData(String),

    /// Anything else that makes a file unusable (malformed JSON header, bad imatrix entry, …).
    #[error("{path}: {msg}", path = path.display())]
    Invalid { path: PathBuf, msg: String },
}

impl FileError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        FileError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        FileError::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn tensor(path: impl Into<PathBuf>, tensor: &str, problem: TensorProblem) -> Self {
        FileError::Tensor {
            path: path.into(),
            tensor: tensor.to_owned(),
            problem,
        }
    }
}
