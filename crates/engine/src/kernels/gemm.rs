//! The prompt path: a chunk of weight rows dequantized to f32 once, then one GEMM of the whole
//! token batch against it (faer's register-blocked kernels). Dequantizing costs one pass over the
//! chunk and is amortised over every token; the chunk (≤ 256 KiB of f32 per thread) stays in L2.

use super::OutPtr;
use crate::tensor::QMatrix;
use faer::{Accum, MatMut, MatRef, Par};
use lowbit_formats::{block_format, GgmlType};
use rayon::prelude::*;

/// Weight rows per task: 256 KiB of f32 (a quarter of Zen 4's L2; measured better than 64 KiB and
/// 1 MiB for SmolLM2's shapes, since faer re-packs the activations for every chunk), at least 8
/// so GEMM tiles stay full.
fn chunk_rows(cols: usize, rows: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (65536 / cols.max(1))
        .clamp(8, 1024)
        .min(rows.div_ceil(2 * threads))
        .max(1)
}

pub fn matmul(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    let chunk = chunk_rows(cols, rows);
    let fmt = block_format(w.ty).expect("every GGML weight type has a block format");
    let ptr = OutPtr(out.as_mut_ptr());
    assert_eq!(out.len(), n_tokens * rows);
    let lhs = MatRef::from_row_major_slice(x, n_tokens, cols);
    // F32 weights that are suitably aligned are used in place.
    let direct: Option<&[f32]> = match w.ty {
        GgmlType::F32 => match unsafe { w.data.align_to::<f32>() } {
            (&[], body, &[]) => Some(body),
            _ => None,
        },
        _ => None,
    };
    let run = |c: usize| {
        let (r0, r1) = (c * chunk, ((c + 1) * chunk).min(rows));
        let rc = r1 - r0;
        let mut buf = Vec::new();
        let wt: &[f32] = match direct {
            Some(all) => &all[r0 * cols..r1 * cols],
            None => {
                buf.resize(rc * cols, 0f32);
                for (r, dst) in (r0..r1).zip(buf.chunks_exact_mut(cols)) {
                    fmt.dequantize_row(w.row(r), dst)
                        .expect("row geometry checked by QMatrix::new");
                }
                &buf
            }
        };
        // Wᵀ for this chunk: cols × rc, column j = weight row r0 + j.
        let rhs = MatRef::from_column_major_slice(wt, cols, rc);
        // SAFETY: the view covers out[t·rows + r0 .. t·rows + r1] for each token t, inside `out`
        // (asserted above), and no other task touches columns r0..r1.
        let dst = unsafe {
            MatMut::from_raw_parts_mut({ ptr }.0.add(r0), n_tokens, rc, rows as isize, 1)
        };
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
    };
    let n_chunks = rows.div_ceil(chunk);
    if rayon::current_num_threads() <= 1 || n_chunks == 1 {
        (0..n_chunks).for_each(run);
    } else {
        (0..n_chunks).into_par_iter().for_each(run);
    }
}
