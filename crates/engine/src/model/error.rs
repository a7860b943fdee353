//! Why a model could not be loaded or run. Every variant names the key or tensor at fault, so a
//! user with a hand-made or truncated GGUF knows what to fix.

use lowbit_files::FileError;
use lowbit_formats::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("unsupported architecture `{0}` (supported: llama, mistral, qwen2, qwen3, gemma3)")]
    UnknownArch(String),
    #[error("metadata key `{key}` is missing")]
    MissingKey { key: String },
    #[error("metadata key `{key}` has an unusable value: {why}")]
    BadKey { key: String, why: String },
    #[error("tensor `{0}` is missing")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor `{name}` has type {ty:?}, which the engine cannot use here")]
    WrongType { name: String, ty: GgmlType },
    #[error("{needed} positions do not fit in a context of {n_ctx}")]
    ContextFull { needed: usize, n_ctx: usize },
    #[error("token id {token} is outside the vocabulary of {n_vocab}")]
    BadToken { token: u32, n_vocab: usize },
    #[error("nothing to evaluate: empty token list")]
    NoTokens,
}

pub type Result<T> = std::result::Result<T, ModelError>;
