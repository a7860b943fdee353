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
        (data.len() == rows.checked_mul(row_bytes)?).then_some(QMatrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// A weight matrix in any block type, borrowed from a memory map or owned (a matrix quantized in
/// memory, or replaced by a calibration run): the engine's weights are these, and every product
/// sees them through the [`QMatrix`] view.
#[derive(Clone, Debug)]
pub struct Matrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: std::borrow::Cow<'a, [u8]>,
}

impl<'a> Matrix<'a> {
    /// Checks the byte length against the type's geometry.
    pub fn new(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: std::borrow::Cow<'a, [u8]>,
    ) -> Option<Matrix<'a>> {
        QMatrix::new(ty, rows, cols, &data)?;
        Some(Matrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    /// An owned matrix (e.g. freshly quantized bytes).
    pub fn owned(ty: GgmlType, rows: usize, cols: usize, data: Vec<u8>) -> Option<Matrix<'a>> {
        Matrix::new(ty, rows, cols, std::borrow::Cow::Owned(data))
    }

    pub fn q(&self) -> QMatrix<'_> {
        QMatrix {
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
            data: &self.data,
        }
    }

    /// Dequantizes row `r` (an embedding lookup).
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let fmt = lowbit_formats::block_format(self.ty).expect("type checked at load");
        fmt.dequantize_row(self.q().row(r), out)
            .expect("geometry checked at load");
    }

    /// The whole matrix as f32, row-major `rows × cols`.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        if self.cols > 0 {
            for (r, row) in out.chunks_exact_mut(self.cols).enumerate() {
                self.row_into(r, row);
            }
        }
        out
    }
}

/// Quantizes weights the engine is loading, for runs that measure a quantized model without
/// writing a file (`embed --quantize`, `perplexity --quantize`). The engine knows no quantizer:
/// the implementation comes from `lowbit-quant` through the layer above both, so there is one
/// quantizer in lowbit.
pub trait WeightQuantizer: Sync {
    /// Quantizes a row-major `rows × cols` matrix named `name`; returns its type and blocks.
    fn quantize(
        &self,
        name: &str,
        values: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<(GgmlType, Vec<u8>), String>;

    /// The same matrix as int8 codes (row-major) and one scale per row, for quantizers whose
    /// layout is symmetric int8 per output channel (W8A8): the engine then also runs the matrix
    /// as int8 × int8 products. `None`: this quantizer has no int8 form.
    fn quantize_int8(&self, _name: &str, _values: &[f32], _rows: usize, _cols: usize) -> Option<Result<(Vec<i8>, Vec<f32>), String>> {
        None
    }

    /// Whether [`quantize_int8`](Self::quantize_int8) can give anything (so loaders skip
    /// reading the values again when it cannot).
    fn offers_int8(&self) -> bool {
        false
    }
}
