//! Matrix products on quantized weights.
//!
//! The contract every caller uses: [`matmul`] computes `out[t][r] = Σ_c w[r][c] · x[t][c]` for a
//! batch of `n_tokens` activation rows. [`reference`] is the plain definition the optimised
//! paths are tested against.
//!
//! How it is computed:
//! * Few tokens (generation): each weight row is streamed once and dotted with every token.
//!   Quantized weights meet activations quantized on the fly to 8-bit blocks ([`act`]) in
//!   integer dot products, block by block, without dequantizing; F32/F16/BF16 weights use float
//!   dots. Types without an integer kernel (the lattice IQ types) dequantize a row, then dot.
//! * Many tokens (prompt): a chunk of weight rows is dequantized to f32 once and multiplied with
//!   the whole batch by faer's GEMM, which reuses each weight across all tokens in registers.
//! * Rows are split into chunks over the current rayon pool; the instruction-set level is
//!   detected once ([`cpu`]); every SIMD kernel has a portable twin built from the same source.
//!   At the AVX-512 level the VNNI kernels (`avx512`) take whole runs of rows for the types where
//!   they measured faster; the other types keep the AVX2 kernels there.
//! * W8A8 (int8 weights per row and int8 activations) has its own integer path, [`int8`].

pub mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod cpu;
pub(crate) mod dot_float;
mod dot_kquants;
mod dot_legacy;
mod gemm;
pub mod int8;
pub mod reference;
#[cfg(test)]
mod tests;
mod twins;

use crate::tensor::QMatrix;
use act::{ActBatch, ActKind, ActRow};
use cpu::Level;
use lowbit_formats::{block_format, GgmlType};
use rayon::prelude::*;
use twins::RowDot;

/// How activations meet quantized weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activations {
    /// Quantize activations to 8-bit blocks and use integer dot products (what llama.cpp does);
    /// batches of at least [`MatmulOptions::gemm_min_tokens`] tokens still go through the f32
    /// GEMM, which is both faster there and exact.
    #[default]
    Q8,
    /// Keep activations in f32 and dequantize weights instead: slower for generation, but free
    /// of activation rounding (to measure what that rounding costs).
    F32,
}

/// Options for [`matmul_with`].
#[derive(Clone, Copy, Debug)]
pub struct MatmulOptions {
    pub activations: Activations,
    /// Batches this large or larger use the dequantize + GEMM path.
    pub gemm_min_tokens: usize,
    /// Instruction-set level; `None` = the best the CPU has. Setting a level the CPU lacks is
    /// clamped to the detected one.
    pub level: Option<Level>,
}

impl Default for MatmulOptions {
    fn default() -> Self {
        MatmulOptions {
            activations: Activations::Q8,
            gemm_min_tokens: 16,
            level: None,
        }
    }
}

/// `out` (n_tokens × w.rows) = `x` (n_tokens × w.cols) · wᵀ.
pub fn matmul(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32]) {
    matmul_with(&MatmulOptions::default(), w, x, n_tokens, out)
}

/// [`matmul`] with explicit options.
pub fn matmul_with(opts: &MatmulOptions, w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32]) {
    assert_eq!(x.len(), n_tokens * w.cols, "activation shape");
    assert_eq!(out.len(), n_tokens * w.rows, "output shape");
    if n_tokens == 0 || w.rows == 0 {
        return;
    }
    if w.cols == 0 {
        out.fill(0.0);
        return;
    }
    let level = opts
        .level
        .map_or(cpu::detected(), |l| l.min(cpu::detected()));
    if n_tokens >= opts.gemm_min_tokens.max(1) {
        return gemm::matmul(w, x, n_tokens, out);
    }
    let is_float = matches!(w.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
    let kernel = (is_float || opts.activations == Activations::Q8)
        .then(|| kernel(w.ty, level))
        .flatten();
    let rows = (is_float || opts.activations == Activations::Q8)
        .then(|| rows_kernel(w.ty, level))
        .flatten();
    let rb = w.row_bytes();
    match (rows, kernel) {
        (Some((kind, f)), _) => {
            let acts = ActBatch::new(kind, x, w.cols, n_tokens);
            by_rows(w, out, |r0, r1, chunk| {
                for t in 0..n_tokens {
                    f(&w.data[r0 * rb..r1 * rb], rb, &acts.row(t), chunk.token(t));
                }
            });
        }
        (None, Some((kind, f))) => {
            let acts = ActBatch::new(kind, x, w.cols, n_tokens);
            by_rows(w, out, |r0, r1, chunk| {
                for t in 0..n_tokens {
                    let a = acts.row(t);
                    let o = chunk.token(t);
                    for (r, o) in (r0..r1).zip(o) {
                        *o = f(w.row(r), &a);
                    }
                }
            });
        }
        (None, None) => dequant_dot(w, x, n_tokens, out, level),
    }
}

/// A kernel over several consecutive weight rows (`w` holds `out.len()` rows of `row_bytes`
/// each) and one activation row: levels with enough registers share each activation load
/// across rows.
pub(crate) type RowsDot = fn(w: &[u8], row_bytes: usize, a: &ActRow, out: &mut [f32]);

/// The multi-row kernel for a weight type at a level, where that level has one.
pub(crate) fn rows_kernel(ty: GgmlType, level: Level) -> Option<(ActKind, RowsDot)> {
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => avx512::kernel(ty),
        _ => None,
    }
}

/// The kernel for a weight type at a level, with the activation form it needs.
pub(crate) fn kernel(ty: GgmlType, level: Level) -> Option<(ActKind, RowDot)> {
    macro_rules! pick {
        ($m:path) => {{
            use $m as m;
            use ActKind::*;
            use GgmlType as T;
            let k: (ActKind, RowDot) = match ty {
                T::F32 => (F32, m::f32w),
                T::F16 => (F32, m::f16w),
                T::BF16 => (F32, m::bf16w),
                T::Q4_0 => (Q8x32, m::q4_0),
                T::Q4_1 => (Q8x32, m::q4_1),
                T::Q5_0 => (Q8x32, m::q5_0),
                T::Q5_1 => (Q8x32, m::q5_1),
                T::Q8_0 => (Q8x32, m::q8_0),
                T::IQ4_NL => (Q8x32, m::iq4_nl),
                T::MXFP4 => (Q8x32, m::mxfp4),
                T::Q2_K => (Q8x256, m::q2_k),
                T::Q3_K => (Q8x256, m::q3_k),
                T::Q4_K => (Q8x256, m::q4_k),
                T::Q5_K => (Q8x256, m::q5_k),
                T::Q6_K => (Q8x256, m::q6_k),
                T::IQ4_XS => (Q8x256, m::iq4_xs),
                T::TQ1_0 => (Q8x256, m::tq1_0),
                T::TQ2_0 => (Q8x256, m::tq2_0),
                _ => return None,
            };
            Some(k)
        }};
    }
    match level {
        Level::Scalar => pick!(twins::scalar),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => avx2::kernel(ty).or_else(|| pick!(twins::avx2)),
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => avx2::kernel(ty).or_else(|| pick!(twins::avx512)),
        #[cfg(not(target_arch = "x86_64"))]
        _ => pick!(twins::scalar),
    }
}

/// Dequantize each weight row once into a scratch row, then f32-dot it with every token.
fn dequant_dot(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32], level: Level) {
    let fmt = block_format(w.ty).expect("every GGML weight type has a block format");
    by_rows(w, out, |r0, r1, chunk| {
        let mut row = vec![0f32; w.cols];
        for r in r0..r1 {
            fmt.dequantize_row(w.row(r), &mut row)
                .expect("row geometry checked by QMatrix::new");
            for t in 0..n_tokens {
                chunk.token(t)[r - r0] =
                    twins::f32_dot(level, &row, &x[t * w.cols..(t + 1) * w.cols]);
            }
        }
    });
}

/// A raw output pointer shared by tasks that write disjoint row ranges.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (distinct rows r of each token's output row).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// One task's share of the output: rows `r0..r1` of every token.
struct Chunk {
    ptr: OutPtr,
    total: usize,
    rows: usize,
    r0: usize,
    r1: usize,
}

impl Chunk {
    /// Token `t`'s outputs for this chunk's rows (one token at a time, hence `&mut self`).
    fn token(&mut self, t: usize) -> &mut [f32] {
        let start = t * self.rows + self.r0;
        assert!(start + (self.r1 - self.r0) <= self.total);
        // SAFETY: in bounds (checked); no other task writes rows r0..r1, and the `&mut self`
        // borrow keeps this the only live slice of this chunk.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.0.add(start), self.r1 - self.r0) }
    }
}

/// Splits the output rows into chunks run in parallel on the current rayon pool. `body(r0, r1,
/// chunk)` computes rows `r0..r1` for every token into `chunk`.
fn by_rows<F>(w: &QMatrix, out: &mut [f32], body: F)
where
    F: Fn(usize, usize, &mut Chunk) + Sync,
{
    let rows = w.rows;
    let threads = rayon::current_num_threads().max(1);
    // Enough chunks to balance threads, big enough to amortise task overhead (~64 KiB of weights).
    let by_bytes = (65536 / w.row_bytes().max(1)).max(1);
    let chunk = by_bytes.min(rows.div_ceil(4 * threads)).max(1);
    let ptr = OutPtr(out.as_mut_ptr());
    let total = out.len();
    let run = |c: usize| {
        let (r0, r1) = (c * chunk, ((c + 1) * chunk).min(rows));
        let mut ch = Chunk {
            ptr,
            total,
            rows,
            r0,
            r1,
        };
        body(r0, r1, &mut ch);
    };
    let n_chunks = rows.div_ceil(chunk);
    if threads == 1 || n_chunks == 1 {
        (0..n_chunks).for_each(run);
    } else {
        (0..n_chunks).into_par_iter().for_each(run);
    }
}
