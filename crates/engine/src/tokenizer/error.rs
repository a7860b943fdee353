use std::path::PathBuf;

use lowbit_files::FileError;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("tokenizer model '{0}' is not supported (supported: gpt2, llama)")]
    UnsupportedModel(String),
    #[error("pre-tokenizer '{0}' is not supported")]
    UnsupportedPre(String),
    #[error("{path}: {what}")]
    BadVocab { path: PathBuf, what: String },
    #[error("{path}: {message}")]
    Hf { path: PathBuf, message: String },
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    BadId { id: u32, n_vocab: usize },
}
