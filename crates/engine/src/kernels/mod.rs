//! Matrix products on quantized weights.
//!
//! The contract every caller uses: [`matmul`] computes `out[t][r] = Σ_c w[r][c] · x[t][c]` for a
//! batch of `n_tokens` activation rows. How it does so (dequantize-and-dot, integer dot products
//! against activations quantized on the fly, AVX2/AVX-512 or portable code) is this module's
//! business; [`reference`] is the plain definition the optimised paths are tested against.

pub mod reference;

use crate::tensor::QMatrix;

/// `out` (n_tokens × w.rows) = `x` (n_tokens × w.cols) · wᵀ.
pub fn matmul(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32]) {
    reference::matmul(w, x, n_tokens, out)
}
