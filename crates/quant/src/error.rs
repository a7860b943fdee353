//! Errors of quantizing a model; each names the tensor it happened on.

use lowbit_formats::FormatError;

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("tensor {tensor}")]
    Format { tensor: String, source: FormatError },
    #[error("tensor {tensor}: reading the source failed: {message}")]
    Source { tensor: String, message: String },
    #[error("tensor {tensor}: writing the output failed: {message}")]
    Sink { tensor: String, message: String },
    #[error("tensor {tensor}: the importance matrix has {got} weights per row, the tensor's rows have {expected}")]
    ImportanceShape {
        tensor: String,
        expected: usize,
        got: usize,
    },
    #[error("tensor {tensor}: {message}")]
    Method { tensor: String, message: String },
    #[error("tensor {tensor}: {what} is not finite")]
    NonFinite { tensor: String, what: String },
}

impl QuantError {
    /// The same error attributed to `tensor` (methods' helpers report without a name).
    pub fn on(self, tensor: &str) -> QuantError {
        match self {
            QuantError::Method { tensor: t, message } if t.is_empty() => QuantError::Method {
                tensor: tensor.into(),
                message,
            },
            e => e,
        }
    }
}
