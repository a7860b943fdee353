use crate::model::ModelError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the text tokenizes to {have} tokens; a context of {n_ctx} needs at least {need}")]
    TooFewTokens {
        have: usize,
        need: usize,
        n_ctx: usize,
    },
    #[error("context {0} is too small: it must be at least 4 tokens")]
    ContextTooSmall(usize),
    #[error("{path}: not a lowbit log-probability file: {why}")]
    BadLogitsFile { path: PathBuf, why: String },
    #[error("the base log-probabilities do not match this run: {0}")]
    Mismatch(String),
}

impl EvalError {
    pub(crate) fn io(
        path: &std::path::Path,
        what: &'static str,
        source: std::io::Error,
    ) -> EvalError {
        EvalError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    }
}
