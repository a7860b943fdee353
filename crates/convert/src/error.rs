use std::path::PathBuf;

/// Everything that can go wrong while translating between a Hugging Face folder and GGUF.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid JSON in {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported architecture {0:?} (supported: llama, mistral, qwen2, qwen3, gemma3)")]
    UnsupportedArch(String),
    #[error("config.json lacks required field {0:?}")]
    MissingConfig(&'static str),
    #[error("GGUF metadata lacks required key {0:?}")]
    MissingMetadata(String),
    #[error("metadata key {key:?} has an unexpected type (expected {expected})")]
    MetadataType { key: String, expected: &'static str },
    #[error("tensor {name:?} has no GGUF counterpart for architecture {arch}")]
    UnknownTensor { name: String, arch: &'static str },
    #[error("tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("tokenizer.model is not a valid SentencePiece model: {0}")]
    SentencePiece(&'static str),
    #[error("no block format for tensor type {0}")]
    NoFormat(String),
    #[error(transparent)]
    Format(#[from] lowbit_formats::FormatError),
    #[error(transparent)]
    Files(#[from] lowbit_files::FileError),
    #[error("output {0} already exists and is not an empty directory")]
    OutputExists(PathBuf),
}

impl ConvertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = ConvertError> = std::result::Result<T, E>;
