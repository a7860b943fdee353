//! Errors of calibration; each says which file, layer or tensor, and what to do about it.

use lowbit_quant::QuantError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    #[error("calibration text {path}: {why}")]
    Text { path: PathBuf, why: String },
    #[error("the engine cannot run this model for calibration: {0}")]
    Model(#[from] lowbit_engine::ModelError),
    #[error("cannot tokenize the calibration text: {0}")]
    Tokenizer(#[from] lowbit_engine::tokenizer::TokenizerError),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error("layer {layer}, input of {site}: an activation (window {window}, token {token}, column {column}) is NaN or infinite; the model's weights produce it on this text")]
    NonFinite {
        layer: usize,
        site: String,
        window: u64,
        token: usize,
        column: usize,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    File(#[from] lowbit_files::FileError),
}
