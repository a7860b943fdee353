//! Why a BERT model could not be loaded or run.

use lowbit_formats::GgmlType;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BertError {
    #[error(transparent)]
    File(#[from] lowbit_files::FileError),
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
    #[error("tensor '{name}': {msg}")]
    Tensor { name: String, msg: String },
    #[error("cannot quantize to {ty}: {msg}")]
    Quantize { ty: GgmlType, msg: String },
    #[error("input: {0}")]
    Input(String),
    #[error(transparent)]
    Format(#[from] lowbit_formats::FormatError),
}

impl BertError {
    pub(crate) fn invalid(path: impl Into<PathBuf>, msg: impl Into<String>) -> BertError {
        BertError::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn tensor(name: &str, msg: impl Into<String>) -> BertError {
        BertError::Tensor {
            name: name.into(),
            msg: msg.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, BertError>;
