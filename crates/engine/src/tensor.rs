//! Weight matrices as the engine sees them: borrowed quantized bytes plus their geometry.

use lowbit_formats::GgmlType;

/// A row-major matrix of `rows` rows of `cols` elements, each row stored as `ty` blocks, borrowed
/// from a memory map (or any byte buffer). Row `r` occupies `data[r * row_bytes .. (r+1) * row_bytes]`.
/// In GGUF terms `cols = ne[0]` (the input dimension of a linear layer) and `rows = ne[1]` (its
/// output dimension).
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// Checks the byte length against the type's geometry.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Option<QMatrix<'a>> {
        let row_bytes = ty.row_bytes(cols as u64)? as usize;
        (data.len() == rows.checked_mul(row_bytes)?).then_some(QMatrix { ty, rows, cols, data })
    }

    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}
