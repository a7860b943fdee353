//! W8A8 products in integers: int8 weights (one scale per output row) times int8 activations
//! (one scale and zero point per token row), summed exactly in i32, scaled once per output.
//!
//! Why a path of its own: the block kernels of [`super`] meet weights block by block, and the
//! prompt path dequantizes to f32 for a float GEMM. A W8A8 checkpoint promises more: both
//! operands are bytes, so a product can run at four multiply-adds per byte lane (`vpdpbusd`) with
//! the weights read once per group of tokens. That is what makes W8A8 a speed choice.
//!
//! Arithmetic (what every level computes, bit for bit in the integer part):
//! the activation code `q = clamp(round(x / s) + z, −128, 127)` is stored as the unsigned byte
//! `u = q + 128`, because the byte product instructions take one unsigned operand. Then
//! `Σ w·(q − z) = Σ w·u − (128 + z)·Σ w`, so each output is
//! `out[t][r] = s_w[r] · s_x[t] · (acc[t][r] − (128 + z[t]) · rowsum[r])`, with `rowsum` computed
//! once when the weights are packed.
//!
//! Layout: weight rows are packed in panels of 16 rows; inside a panel, columns go in groups of
//! four, each group holding 16 rows × 4 bytes (64 bytes, one AVX-512 register), so a single load
//! feeds 16 rows and one broadcast of four activation bytes feeds them all. Columns are padded to
//! a multiple of 4 and rows to a multiple of 16 with zero weights, which contribute nothing.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod scalar;
#[cfg(test)]
mod tests;

use super::cpu::{self, Level};
use rayon::prelude::*;

/// Rows per panel.
pub const PANEL: usize = 16;
/// The longest row the i32 sums hold: `|Σ w·u| ≤ 128 · 255 · cols` must stay below 2³¹.
pub const MAX_COLS: usize = 65_536;
/// Panels per micro-kernel call (64 output rows).
const BLOCK_PANELS: usize = 4;
/// Tokens per micro-kernel call.
const BLOCK_TOKENS: usize = 6;

/// An int8 weight matrix (`rows` outputs × `cols` inputs) packed for the integer products.
#[derive(Clone, Debug)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    /// `cols` rounded up to a multiple of 4.
    kp: usize,
    /// Panels of `kp · 16` bytes, a multiple of four of them.
    packed: Vec<i8>,
    scale: Vec<f32>,
    row_sum: Vec<i32>,
}

impl Int8Matrix {
    /// Packs row-major codes (`rows × cols`) with one scale per row: row `r` stands for
    /// `codes[r][c] · scales[r]`. `None` when the lengths disagree with the shape, or when a row
    /// is longer than [`MAX_COLS`] (its i32 sums could overflow).
    pub fn new(rows: usize, cols: usize, codes: &[i8], scales: &[f32]) -> Option<Int8Matrix> {
        if codes.len() != rows.checked_mul(cols)? || scales.len() != rows || cols > MAX_COLS {
            return None;
        }
        let kp = cols.div_ceil(4) * 4;
        // Whole micro-kernel blocks, so that every block reads four panels (zero rows at the end).
        let n_panels = rows.div_ceil(PANEL * BLOCK_PANELS) * BLOCK_PANELS;
        let mut packed = vec![0i8; n_panels * kp * PANEL];
        for (r, row) in codes.chunks_exact(cols.max(1)).enumerate().take(rows) {
            let panel = &mut packed[(r / PANEL) * kp * PANEL..][..kp * PANEL];
            let ri = r % PANEL;
            for (c, &v) in row.iter().enumerate() {
                panel[(c / 4) * 64 + ri * 4 + c % 4] = v;
            }
        }
        let row_sum = (0..rows)
            .map(|r| codes[r * cols..(r + 1) * cols].iter().map(|&v| v as i32).sum())
            .collect();
        Some(Int8Matrix {
            rows,
            cols,
            kp,
            packed,
            scale: scales.to_vec(),
            row_sum,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the packed codes and per-row scales take.
    pub fn bytes(&self) -> usize {
        self.packed.len() + 8 * self.rows
    }

    /// Code `(r, c)`, read back from the packed layout.
    pub fn code(&self, r: usize, c: usize) -> i8 {
        self.packed[(r / PANEL) * self.kp * PANEL + (c / 4) * 64 + (r % PANEL) * 4 + c % 4]
    }

    pub fn scale(&self, r: usize) -> f32 {
        self.scale[r]
    }

    fn n_panels(&self) -> usize {
        self.packed.len() / (self.kp * PANEL).max(1)
    }
}

/// How one batch of activation rows is rounded to int8.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActRange {
    /// One range for every row, fixed by calibration: `x ≈ scale · (q − zero)`.
    Static { scale: f32, zero: i32 },
    /// Each row its own symmetric range: `scale = max|x| / 127.5`, zero 0 (compressed-tensors'
    /// dynamic per-token rule).
    DynamicToken,
}

/// Activation rows rounded to int8, stored as `q + 128` (see the module doc).
#[derive(Clone, Debug)]
pub struct Int8Acts {
    n: usize,
    cols: usize,
    kp: usize,
    codes: Vec<u8>,
    scale: Vec<f32>,
    /// `128 + zero` per row: what `rowsum` is multiplied by.
    offset: Vec<i32>,
}

impl Int8Acts {
    /// Rounds `n` rows of `cols` values: `q = clamp(round(x / s) + z, −128, 127)`, half to even,
    /// exactly as compressed-tensors (and so vLLM) round an `input_scale`.
    pub fn quantize(x: &[f32], n: usize, cols: usize, range: ActRange) -> Int8Acts {
        assert_eq!(x.len(), n * cols, "activation shape");
        let kp = cols.div_ceil(4) * 4;
        let mut codes = vec![0u8; n * kp];
        let mut scale = vec![0f32; n];
        let mut offset = vec![0i32; n];
        let level = cpu::detected();
        let one = |(row, (dst, (s_out, off_out))): (&[f32], (&mut [u8], (&mut f32, &mut i32)))| {
            let (s, z) = match range {
                // A NaN would round to a finite code; give its row a NaN scale instead, so its
                // outputs are NaN as the float path's are.
                ActRange::Static { scale, zero } => (if row.iter().any(|v| v.is_nan()) { f32::NAN } else { scale }, zero),
                ActRange::DynamicToken => {
                    let a = abs_max(level, row);
                    (if a.is_finite() { a / 127.5 } else { f32::NAN }, 0)
                }
            };
            *s_out = s;
            *off_out = 128 + z;
            let dst = &mut dst[..cols];
            if s == 0.0 || !s.is_finite() {
                // An all-zero row has every code at the zero point; a non-finite one's NaN scale
                // carries through to its outputs.
                dst.fill((128 + z) as u8);
                return;
            }
            match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the level was detected, so the CPU has AVX2.
                Level::Avx2 | Level::Avx512 => unsafe { round_row_avx2(row, s, z as f32, dst) },
                _ => round_row(row, s, z as f32, dst),
            }
        };
        if cols > 0 {
            let rows = x.chunks_exact(cols);
            let rest = codes.chunks_mut(kp).zip(scale.iter_mut().zip(offset.iter_mut()));
            // Rounding is a pass over the batch: worth spreading over the pool for prompts.
            if n >= 32 && rayon::current_num_threads() > 1 {
                x.par_chunks_exact(cols)
                    .zip(codes.par_chunks_mut(kp).zip(scale.par_iter_mut().zip(offset.par_iter_mut())))
                    .for_each(one);
            } else {
                rows.zip(rest).for_each(one);
            }
        }
        Int8Acts { n, cols, kp, codes, scale, offset }
    }

    /// Rows (tokens).
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The values the codes stand for: `s · (q − z)` (what a fake-quantized product reads).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.n * self.cols];
        for t in 0..self.n {
            let (s, off) = (self.scale[t], self.offset[t]);
            for c in 0..self.cols {
                out[t * self.cols + c] = s * (self.codes[t * self.kp + c] as i32 - off) as f32;
            }
        }
        out
    }
}

/// `u = clamp(round(x / s) + z, −128, 127) + 128`, half to even: the division (not a multiply by
/// the reciprocal) keeps the codes identical to the fake-quantized values of `lowbit-calib`.
#[inline(always)]
fn round_row(row: &[f32], s: f32, z: f32, dst: &mut [u8]) {
    for (u, &v) in dst.iter_mut().zip(row) {
        *u = (((v / s).round_ties_even() + z).clamp(-128.0, 127.0) + 128.0) as u8;
    }
}

/// The largest magnitude of a row; NaN when the row holds one, so that its scale is not finite
/// and its outputs come out NaN, as the float path's would.
fn abs_max(level: Level, row: &[f32]) -> f32 {
    #[inline(always)]
    fn portable(row: &[f32]) -> f32 {
        let mut m = [0f32; 8];
        let chunks = row.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            for j in 0..8 {
                m[j] = if c[j].abs() > m[j] { c[j].abs() } else { m[j] };
            }
        }
        let m = tail.iter().fold(m.iter().fold(0f32, |a, &b| a.max(b)), |a, v| a.max(v.abs()));
        if row.iter().any(|v| v.is_nan()) { f32::NAN } else { m }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(row: &[f32]) -> f32 {
        portable(row)
    }
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level was detected, so the CPU has AVX2.
        Level::Avx2 | Level::Avx512 => unsafe { avx2(row) },
        _ => portable(row),
    }
}

/// [`round_row`] compiled for AVX2, where rounding half to even is one instruction (the portable
/// build calls a library function per value, which cost more than the product itself).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn round_row_avx2(row: &[f32], s: f32, z: f32, dst: &mut [u8]) {
    round_row(row, s, z, dst)
}

/// One micro-kernel: the four panels from `p0` against `nt ≤ 6` tokens from `t0`, writing the raw
/// i32 sums to `acc[t][p·16 + i]` (row `(p0 + p)·16 + i`, token `t0 + t`).
pub(crate) type MicroKernel = fn(w: &Int8Matrix, p0: usize, a: &Int8Acts, t0: usize, nt: usize, acc: &mut Acc);

/// Raw sums of one micro-kernel call.
pub(crate) type Acc = [[i32; BLOCK_PANELS * PANEL]; BLOCK_TOKENS];

fn micro_kernel(level: Level) -> MicroKernel {
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => avx512::block,
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => avx2::block,
        _ => scalar::block,
    }
}

/// `out` (n × w.rows, row-major) = the int8 product of `a` and `w`, scaled back to f32.
pub fn matmul_int8(w: &Int8Matrix, a: &Int8Acts, out: &mut [f32]) {
    matmul_int8_at(cpu::detected(), w, a, out)
}

/// [`matmul_int8`] at a given instruction-set level (clamped to what the CPU has).
pub fn matmul_int8_at(level: Level, w: &Int8Matrix, a: &Int8Acts, out: &mut [f32]) {
    assert_eq!(a.cols, w.cols, "activation width");
    assert_eq!(out.len(), a.n * w.rows, "output shape");
    if a.n == 0 || w.rows == 0 {
        return;
    }
    let kernel = micro_kernel(level.min(cpu::detected()));
    let rows = w.rows;
    let n_blocks = w.n_panels() / BLOCK_PANELS;
    // Tasks are (row block, token span) pairs: a matrix with few row blocks (K and V) still
    // spreads a long prompt over every thread.
    let threads = rayon::current_num_threads().max(1);
    let spans = (2 * threads).div_ceil(n_blocks).min(a.n.div_ceil(4 * BLOCK_TOKENS)).max(1);
    let span = a.n.div_ceil(spans).div_ceil(BLOCK_TOKENS) * BLOCK_TOKENS;
    let spans = a.n.div_ceil(span);
    let ptr = OutPtr(out.as_mut_ptr());
    let run = |task: usize| {
        let (b, sp) = (task / spans, task % spans);
        let p0 = b * BLOCK_PANELS;
        let (r0, r1) = (p0 * PANEL, ((p0 + BLOCK_PANELS) * PANEL).min(rows));
        let mut acc: Acc = [[0; BLOCK_PANELS * PANEL]; BLOCK_TOKENS];
        let (mut t0, t_end) = (sp * span, ((sp + 1) * span).min(a.n));
        while t0 < t_end {
            let nt = (t_end - t0).min(BLOCK_TOKENS);
            kernel(w, p0, a, t0, nt, &mut acc);
            for (ti, sums) in acc.iter().enumerate().take(nt) {
                let t = t0 + ti;
                let (st, off) = (a.scale[t], a.offset[t]);
                let dst = &w.row_sum[r0..r1];
                for (r, &rs) in (r0..r1).zip(dst) {
                    let v = sums[r - r0] - off * rs;
                    // SAFETY: r < rows and t < n, so the index is inside `out` (its length was
                    // asserted above); tasks write disjoint (row block, token span) regions.
                    unsafe { *{ ptr }.0.add(t * rows + r) = w.scale[r] * st * v as f32 };
                }
            }
            t0 += nt;
        }
    };
    let tasks = n_blocks * spans;
    if threads <= 1 || tasks == 1 {
        (0..tasks).for_each(run);
    } else {
        (0..tasks).into_par_iter().for_each(run);
    }
}

/// A raw output pointer shared by tasks that write disjoint regions.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (distinct rows or tokens of the output).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}
