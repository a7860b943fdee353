//! TQ2_0: 256 trits in 66 bytes — `qs[64]`, f16 `d` — as ggml's `block_tq2_0`.
//!
//! Each trit is stored as 2 bits (0, 1, 2 for -1, 0, +1; the decoder maps 3 to +2 like ggml).
//! Byte `qs[32k + m]` holds elements 128k + 32n + m in bits 2n..2n+2, n = 0..4, so one 32-byte
//! load and four shifts yield four contiguous runs of 32 elements.

use super::{quantize_block, QK};
use crate::block::{check_row, BlockFormat};
use crate::blockwise::{blocks, dequantize_blocks};
use crate::float::read_f16;
use crate::blockwise::store_f16;
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::{FormatError, GgmlType};

pub struct Tq2_0;

const D_OFF: usize = QK / 4;

/// Writes 256 trit codes into `qs` (bits 2n of byte 32k + m hold element 128k + 32n + m).
fn pack_trits(c: &[u8], out: &mut [u8]) {
    for (qs, c) in out[..D_OFF].chunks_exact_mut(32).zip(c.chunks_exact(128)) {
        for (m, q) in qs.iter_mut().enumerate() {
            *q = c[m] | c[m + 32] << 2 | c[m + 64] << 4 | c[m + 96] << 6;
        }
    }
}

impl BlockGrid for Tq2_0 {
    fn group(&self) -> usize {
        QK
    }
    fn levels(&self) -> Levels {
        Levels::Ternary
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        out[0] = GroupParams {
            scale: read_f16(&b[D_OFF..]),
            ..Default::default()
        };
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        for (qs, c) in b[..D_OFF].chunks_exact(32).zip(codes.chunks_exact_mut(128)) {
            for n in 0..4 {
                for m in 0..32 {
                    // The decoder maps 3 to +2; lowbit never writes it, read it as +1.
                    c[32 * n + m] = ((qs[m] >> (2 * n)) & 3).min(2);
                }
            }
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        pack_trits(codes, b);
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        let d = read_f16(&b[D_OFF..]);
        store_f16(&mut b[D_OFF..D_OFF + 2], d * r);
    }
}

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
            pack_trits(&c, out);
        });
        Ok(())
    }

    fn grid(&self) -> Option<&'static dyn BlockGrid> {
        Some(&Tq2_0)
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
