use crate::GgmlType;

/// Errors from the pure format layer: always a caller's mistake about lengths or types, so each
/// names the numbers involved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error(
        "{ty}: a row of {n_elems} elements is not a whole number of {block_elems}-element blocks"
    )]
    PartialBlock {
        ty: GgmlType,
        n_elems: usize,
        block_elems: usize,
    },
    #[error("{ty}: expected {expected} bytes of blocks, got {got}")]
    ByteLength {
        ty: GgmlType,
        expected: usize,
        got: usize,
    },
    #[error("importance vector has {got} weights for a row of {expected} elements")]
    ImportanceLength { expected: usize, got: usize },
    #[error("{0} can be read but lowbit does not quantize to it")]
    QuantizeUnsupported(GgmlType),
    #[error("{0} has no block format (integer or unknown type)")]
    NoFormat(GgmlType),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}
