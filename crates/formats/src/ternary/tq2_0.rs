//! TQ2_0: 256 trits in 66 bytes — `qs[64]`, f16 `d` — as ggml's `block_tq2_0`.
//!
//! Each trit is stored as 2 bits (0, 1, 2 for -1, 0, +1; the decoder maps 3 to +2 like ggml).
//! Byte `qs[32k + m]` holds elements 128k + 32n + m in bits 2n..2n+2, n = 0..4, so one 32-byte
//! load and four shifts yield four contiguous runs of 32 elements.

use super::{quantize_block, QK};
use crate::block::{check_row, BlockFormat};
use crate::blockwise::{blocks, dequantize_blocks};
use crate::float::read_f16;
use crate::{FormatError, GgmlType};

pub struct Tq2_0;

const D_OFF: usize = QK / 4;

impl BlockFormat for Tq2_0 {
    fn ty(&self) -> GgmlType {
        GgmlType::TQ2_0
    }

    fn quantize_row(
        &self,
        src: &[f32],
        importance: Option<&[f32]>,
        dst: &mut [u8],
    ) -> Result<(), FormatError> {
        check_row(self.ty(), src.len(), dst.len(), importance.map(<[f32]>::len))?;
        blocks(self.ty(), src, importance, dst, |x, w, out| {
            let c = quantize_block(x, w, &mut out[D_OFF..]);
            for (k, (qs, c)) in out[..D_OFF]
                .chunks_exact_mut(32)
                .zip(c.chunks_exact(128))
                .enumerate()
            {
                debug_assert!(k < 2);
                for (m, q) in qs.iter_mut().enumerate() {
                    *q = c[m] | c[m + 32] << 2 | c[m + 64] << 4 | c[m + 96] << 6;
                }
            }
        });
        Ok(())
    }

    fn dequantize_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
        dequantize_blocks(self.ty(), src, dst, |blk, y| {
            let d = read_f16(&blk[D_OFF..]);
            for (qs, y) in blk[..D_OFF].chunks_exact(32).zip(y.chunks_exact_mut(128)) {
                for (n, y) in y.chunks_exact_mut(32).enumerate() {
                    for (out, &q) in y.iter_mut().zip(qs) {
                        *out = (((q >> (2 * n)) & 3) as i8 - 1) as f32 * d;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_order_matches_ggml() {
        for i in [0usize, 1, 31, 32, 64, 96, 127, 128, 160, 255] {
            let mut x = [0f32; QK];
            x[i] = -2.5;
            let mut q = [0u8; 66];
            Tq2_0.quantize_row(&x, None, &mut q).unwrap();
            let byte = (i / 128) * 32 + i % 32;
            let shift = 2 * ((i % 128) / 32);
            for (k, &b) in q[..D_OFF].iter().enumerate() {
                let expect = if k == byte {
                    0x55 & !(3 << shift)
                } else {
                    0x55
                };
                assert_eq!(b, expect, "element {i} byte {k}");
            }
            let mut y = [0f32; QK];
            Tq2_0.dequantize_row(&q, &mut y).unwrap();
            assert_eq!(y, x);
        }
    }

    #[test]
    fn code_three_decodes_to_plus_two() {
        let mut q = [0x55u8; 66];
        q[0] = 0x57;
        q[D_OFF..].copy_from_slice(&half::f16::from_f32(0.5).to_bits().to_le_bytes());
        let mut y = [0f32; QK];
        Tq2_0.dequantize_row(&q, &mut y).unwrap();
        assert_eq!(y[0], 1.0);
        assert!(y[1..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn length_errors_are_reported() {
        let mut q = [0u8; 66];
        assert!(Tq2_0.quantize_row(&[0.0; 100], None, &mut q).is_err());
        assert!(Tq2_0.dequantize_row(&q[..65], &mut [0.0; 256]).is_err());
    }
}
