//! Activations quantized on the fly to 8-bit blocks, so weight blocks can be multiplied with
//! integer dot products. Two granularities, chosen by the weight type:
//!
//! * 32-element blocks (legacy types, IQ4_NL, MXFP4): an f32 scale per block and the block's
//!   scaled sum `d · Σq`, which carries the min term of the asymmetric types (Q4_1, Q5_1).
//! * 256-element super-blocks (k-quants, IQ4_XS, ternary): one f32 scale per super-block, so
//!   the weights' small integer sub-scales can be applied in integer arithmetic, plus the integer
//!   sum of every 16 quants for the min / offset terms.
//!
//! Scales are kept in f32 (ggml stores f16 for Q8_0/Q8_1): the layout is private to the engine,
//! and the extra precision costs nothing.

/// One activation row in the form a weight type's integer kernel wants.
#[derive(Clone, Copy, Debug)]
pub struct ActRow<'a> {
    /// The row in f32 (float weights and dequantize-then-dot kernels use this).
    pub x: &'a [f32],
    /// One scale per block (32 or 256 elements).
    pub d: &'a [f32],
    /// The quants, `x ≈ d · q`.
    pub qs: &'a [i8],
    /// 32-blocks: `d · Σq` per block.
    pub sums: &'a [f32],
    /// 256-blocks: `Σq` per 16 elements.
    pub bsums: &'a [i16],
}

/// How activations must be prepared for a weight type's kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActKind {
    /// f32 only.
    F32,
    /// 32-element Q8 blocks with sums.
    Q8x32,
    /// 256-element Q8 super-blocks with per-16 integer sums.
    Q8x256,
}

/// A batch of quantized activation rows (one per token).
pub struct ActBatch<'a> {
    x: &'a [f32],
    cols: usize,
    d: Vec<f32>,
    qs: Vec<i8>,
    sums: Vec<f32>,
    bsums: Vec<i16>,
    kind: ActKind,
}

impl<'a> ActBatch<'a> {
    /// Quantizes `n_tokens` rows of `cols` elements each. `cols` must be a multiple of the block
    /// size of `kind` (guaranteed when it matches the weight type's block size).
    pub fn new(kind: ActKind, x: &'a [f32], cols: usize, n_tokens: usize) -> ActBatch<'a> {
        let mut b = ActBatch {
            x,
            cols,
            d: Vec::new(),
            qs: Vec::new(),
            sums: Vec::new(),
            bsums: Vec::new(),
            kind,
        };
        match kind {
            ActKind::F32 => {}
            ActKind::Q8x32 => {
                let nb = cols / 32 * n_tokens;
                b.d = vec![0.0; nb];
                b.sums = vec![0.0; nb];
                b.qs = vec![0; cols * n_tokens];
                for (((xb, qb), d), s) in x
                    .chunks_exact(32)
                    .zip(b.qs.chunks_exact_mut(32))
                    .zip(&mut b.d)
                    .zip(&mut b.sums)
                {
                    let (dd, isum) = quantize_block(xb, qb);
                    *d = dd;
                    *s = dd * isum as f32;
                }
            }
            ActKind::Q8x256 => {
                let nb = cols / 256 * n_tokens;
                b.d = vec![0.0; nb];
                b.bsums = vec![0; nb * 16];
                b.qs = vec![0; cols * n_tokens];
                for (((xb, qb), d), bs) in x
                    .chunks_exact(256)
                    .zip(b.qs.chunks_exact_mut(256))
                    .zip(&mut b.d)
                    .zip(b.bsums.chunks_exact_mut(16))
                {
                    *d = quantize_block(xb, qb).0;
                    for (s, q) in bs.iter_mut().zip(qb.chunks_exact(16)) {
                        *s = q.iter().map(|&v| v as i16).sum();
                    }
                }
            }
        }
        b
    }

    pub fn kind(&self) -> ActKind {
        self.kind
    }

    /// Token `t`'s row.
    pub fn row(&self, t: usize) -> ActRow<'_> {
        let c = self.cols;
        let x = &self.x[t * c..(t + 1) * c];
        match self.kind {
            ActKind::F32 => ActRow {
                x,
                d: &[],
                qs: &[],
                sums: &[],
                bsums: &[],
            },
            ActKind::Q8x32 => ActRow {
                x,
                d: &self.d[t * c / 32..(t + 1) * c / 32],
                qs: &self.qs[t * c..(t + 1) * c],
                sums: &self.sums[t * c / 32..(t + 1) * c / 32],
                bsums: &[],
            },
            ActKind::Q8x256 => ActRow {
                x,
                d: &self.d[t * c / 256..(t + 1) * c / 256],
                qs: &self.qs[t * c..(t + 1) * c],
                sums: &[],
                bsums: &self.bsums[t * c / 16..(t + 1) * c / 16],
            },
        }
    }
}

/// Symmetric 8-bit quantization of one block (any length); returns the scale and `Σq`.
/// Rounds half away from zero with a cast, which needs no SSE4.1 `round` instruction.
fn quantize_block(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        q.fill(0);
        return (if amax.is_finite() { 0.0 } else { amax }, 0);
    }
    let d = amax / 127.0;
    let id = 127.0 / amax;
    let mut s = 0i32;
    for (o, &v) in q.iter_mut().zip(x) {
        let t = v * id;
        let r = (t + 0.5f32.copysign(t)) as i32;
        *o = r.clamp(-127, 127) as i8;
        s += r;
    }
    (d, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_reconstruct_within_half_a_step() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        for kind in [ActKind::Q8x32, ActKind::Q8x256] {
            let b = ActBatch::new(kind, &x, 256, 2);
            let bs = if kind == ActKind::Q8x32 { 32 } else { 256 };
            for t in 0..2 {
                let r = b.row(t);
                for (i, &q) in r.qs.iter().enumerate() {
                    let d = r.d[i / bs];
                    assert!((q as f32 * d - x[t * 256 + i]).abs() <= 0.5 * d * 1.0001);
                }
            }
        }
    }

    #[test]
    fn zero_blocks_have_zero_scale_and_sums() {
        let x = vec![0f32; 256];
        let b = ActBatch::new(ActKind::Q8x256, &x, 256, 1);
        assert_eq!(b.row(0).d, &[0.0]);
        assert!(b.row(0).bsums.iter().all(|&s| s == 0));
    }
}
