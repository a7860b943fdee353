//! Tensor descriptions shared by the GGUF reader and writer, and the shape rules both enforce.

use lowbit_formats::GgmlType;

use crate::error::TensorProblem;

/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
/// ggml's `GGML_MAX_NAME` minus the terminating NUL.
pub const MAX_NAME_LEN: usize = 63;

/// A tensor as listed in a GGUF header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (contiguous), later dims are outer.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Elements per row (`ne[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    pub fn n_rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.size / self.n_rows()
    }
}

/// A tensor to be written: the writer derives offsets and sizes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorSpec {
    pub fn new(name: impl Into<String>, dims: &[u64], ty: GgmlType) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dims: dims.to_vec(),
            ty,
        }
    }
}

/// Byte size of a tensor of this shape and type, or why the shape is not storable: ggml needs
/// whole blocks along each row, and sizes must fit in memory arithmetic.
pub fn tensor_bytes(dims: &[u64], ty: GgmlType) -> Result<u64, TensorProblem> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(TensorProblem::NDims(dims.len() as u32));
    }
    if let Some(index) = dims.iter().position(|&d| d == 0) {
        return Err(TensorProblem::ZeroDim { index });
    }
    // ggml keeps ne as int64 and byte sizes as size_t: stay within both.
    let mut n: u64 = 1;
    for &d in dims {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or(TensorProblem::SizeOverflow)?;
    }
    let block = ty.block_elems();
    if dims[0] % block as u64 != 0 {
        return Err(TensorProblem::PartialBlock {
            ne0: dims[0],
            ty: ty.name(),
            block,
        });
    }
    ty.row_bytes(n)
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or(TensorProblem::SizeOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_rules() {
        assert_eq!(tensor_bytes(&[256, 3], GgmlType::Q4_K), Ok(3 * 144));
        assert_eq!(
            tensor_bytes(&[], GgmlType::F32),
            Err(TensorProblem::NDims(0))
        );
        assert_eq!(
            tensor_bytes(&[1; 5], GgmlType::F32),
            Err(TensorProblem::NDims(5))
        );
        assert_eq!(
            tensor_bytes(&[4, 0], GgmlType::F32),
            Err(TensorProblem::ZeroDim { index: 1 })
        );
        assert_eq!(
            tensor_bytes(&[1 << 40, 1 << 30], GgmlType::F32),
            Err(TensorProblem::SizeOverflow)
        );
        assert_eq!(
            tensor_bytes(&[1 << 62], GgmlType::F32),
            Err(TensorProblem::SizeOverflow)
        );
        assert!(matches!(
            tensor_bytes(&[576], GgmlType::Q4_K),
            Err(TensorProblem::PartialBlock { .. })
        ));
    }
}
