//! The one trait every quantized block format implements.
//!
//! File code, the quantize pipeline and (later) the engine only ever see `&dyn BlockFormat`, so a
//! new block type is one file plus one line in [`crate::registry`].

use crate::grid::BlockGrid;
use crate::{FormatError, GgmlType};

/// A row-oriented block format: a row of `n` reals is stored as `n / block_elems()` blocks of
/// `block_bytes()` bytes each, exactly as ggml lays them out.
pub trait BlockFormat: Send + Sync {
    /// The ggml type this format reads and writes.
    fn ty(&self) -> GgmlType;

    /// Elements per block.
    fn block_elems(&self) -> usize {
        self.ty().block_elems()
    }

    /// Bytes per block.
    fn block_bytes(&self) -> usize {
        self.ty().block_bytes()
    }

    /// False for formats lowbit can read but not produce (the lattice-codebook IQ types).
    fn can_quantize(&self) -> bool {
        true
    }

    /// Quantizes one row. `src.len()` must be a multiple of `block_elems()` and `dst.len()` the
    /// matching byte count. `importance`, when given, has one non-negative weight per element of
    /// `src` (a row of an importance matrix): the quantizer minimises the importance-weighted
    /// squared error instead of its default objective.
    fn quantize_row(
        &self,
        src: &[f32],
        importance: Option<&[f32]>,
        dst: &mut [u8],
    ) -> Result<(), FormatError>;

    /// Dequantizes one row; `dst.len()` elements from `dst.len() / block_elems()` blocks of `src`.
    fn dequantize_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError>;

    /// Where this type keeps its scales and codes, for fixed-scale encoding ([`crate::grid`]);
    /// None for float and read-only types.
    fn grid(&self) -> Option<&'static dyn BlockGrid> {
        None
    }
}

/// Checks the slice lengths shared by every implementation; returns the number of blocks.
pub fn check_row(
    ty: GgmlType,
    n_elems: usize,
    n_bytes: usize,
    importance: Option<usize>,
) -> Result<usize, FormatError> {
    let be = ty.block_elems();
    if n_elems % be != 0 {
        return Err(FormatError::PartialBlock {
            ty,
            n_elems,
            block_elems: be,
        });
    }
    let blocks = n_elems / be;
    if n_bytes != blocks * ty.block_bytes() {
        return Err(FormatError::ByteLength {
            ty,
            expected: blocks * ty.block_bytes(),
            got: n_bytes,
        });
    }
    if let Some(n) = importance {
        if n != n_elems {
            return Err(FormatError::ImportanceLength {
                expected: n_elems,
                got: n,
            });
        }
    }
    Ok(blocks)
}
