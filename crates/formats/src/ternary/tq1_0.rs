//! TQ1_0: 256 trits in 54 bytes — `qs[48]`, `qh[4]`, f16 `d` — as ggml's `block_tq1_0`.
//!
//! Five trits t0..t4 (t0 most significant) form `v = Σ t_n 3^(4-n)` < 243, stored as
//! `ceil(v · 256 / 243)`: the byte is then a fixed-point fraction whose successive base-3 digits
//! fall out of a multiply-by-3 and a shift, which is how the decoder (and ggml's SIMD kernels)
//! extract them. Element order: `qs[m]` (m < 32) holds elements m + 32n of the first 160;
//! `qs[32 + m]` (m < 16) holds 160 + m + 16n; `qh[j]` holds four trits 240 + j + 4n followed by a
//! zero trit.

use super::quantize_block;
use crate::block::{check_row, BlockFormat};
use crate::blockwise::{blocks, dequantize_blocks};
use crate::float::read_f16;
use crate::blockwise::store_f16;
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::{FormatError, GgmlType};

pub struct Tq1_0;

const QS: usize = 48;
const QH: usize = 4;
const D_OFF: usize = QS + QH;
const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// Stores five trits (0..=2, most significant first) as the fixed-point byte described above.
#[inline]
fn pack5(t: [u8; 5]) -> u8 {
    let v = t.iter().fold(0u16, |acc, &d| acc * 3 + d as u16);
    (v * 256).div_ceil(243) as u8
}

/// Trit `n` (0 = most significant) of a packed byte, as -1, 0 or 1.
#[inline]
fn trit(byte: u8, n: usize) -> i8 {
    let q = byte.wrapping_mul(POW3[n]);
    (((q as u16) * 3) >> 8) as i8 - 1
}

/// Writes 256 trit codes (0, 1, 2) into `qs` and `qh` in ggml's order.
fn pack_trits(c: &[u8], out: &mut [u8]) {
    for m in 0..32 {
        out[m] = pack5([c[m], c[m + 32], c[m + 64], c[m + 96], c[m + 128]]);
    }
    for m in 0..16 {
        let c = &c[160..];
        out[32 + m] = pack5([c[m], c[m + 16], c[m + 32], c[m + 48], c[m + 64]]);
    }
    for j in 0..QH {
        let c = &c[240..];
        out[QS + j] = pack5([c[j], c[j + 4], c[j + 8], c[j + 12], 0]);
    }
}

impl BlockGrid for Tq1_0 {
    fn group(&self) -> usize {
        256
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
        let t = |byte: u8, n: usize| (trit(byte, n) + 1) as u8;
        for n in 0..5 {
            for m in 0..32 {
                codes[32 * n + m] = t(b[m], n);
            }
            for m in 0..16 {
                codes[160 + 16 * n + m] = t(b[32 + m], n);
            }
        }
        for n in 0..4 {
            for j in 0..QH {
                codes[240 + 4 * n + j] = t(b[QS + j], n);
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

impl BlockFormat for Tq1_0 {
    fn ty(&self) -> GgmlType {
        GgmlType::TQ1_0
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
        Some(&Tq1_0)
    }

    fn dequantize_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
        dequantize_blocks(self.ty(), src, dst, |blk, y| {
            let d = read_f16(&blk[D_OFF..]);
            let (head, tail) = y.split_at_mut(160);
            for n in 0..5 {
                for m in 0..32 {
                    head[32 * n + m] = trit(blk[m], n) as f32 * d;
                }
            }
            let (mid, last) = tail.split_at_mut(80);
            for n in 0..5 {
                for m in 0..16 {
                    mid[16 * n + m] = trit(blk[32 + m], n) as f32 * d;
                }
            }
            for n in 0..4 {
                for j in 0..QH {
                    last[4 * n + j] = trit(blk[QS + j], n) as f32 * d;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ternary::QK;

    #[test]
    fn every_five_trit_group_round_trips() {
        for v in 0..243u16 {
            let t = [
                (v / 81) as u8,
                (v / 27 % 3) as u8,
                (v / 9 % 3) as u8,
                (v / 3 % 3) as u8,
                (v % 3) as u8,
            ];
            let b = pack5(t);
            for n in 0..5 {
                assert_eq!(trit(b, n), t[n] as i8 - 1, "v={v} n={n}");
            }
        }
    }

    #[test]
    fn element_order_matches_ggml() {
        // One +1 trit at a time must land in the byte/position the layout comment names.
        for i in [0usize, 31, 32, 159, 160, 175, 176, 239, 240, 243, 244, 255] {
            let mut x = [0f32; QK];
            x[i] = 1.0;
            let mut q = [0u8; 54];
            Tq1_0.quantize_row(&x, None, &mut q).unwrap();
            let zero = pack5([1; 5]);
            let changed: Vec<usize> = (0..D_OFF)
                .filter(|&k| q[k] != zero && !(k >= QS && q[k] == pack5([1, 1, 1, 1, 0])))
                .collect();
            let expect = if i < 160 {
                i % 32
            } else if i < 240 {
                32 + (i - 160) % 16
            } else {
                QS + (i - 240) % 4
            };
            assert_eq!(changed, vec![expect], "element {i}");
            let mut y = [0f32; QK];
            Tq1_0.dequantize_row(&q, &mut y).unwrap();
            assert_eq!(y, x);
        }
    }

    #[test]
    fn length_errors_are_reported() {
        let mut q = [0u8; 54];
        assert!(matches!(
            Tq1_0.quantize_row(&[0.0; 255], None, &mut q),
            Err(FormatError::PartialBlock { .. })
        ));
        assert!(matches!(
            Tq1_0.quantize_row(&[0.0; 256], None, &mut q[..53]),
            Err(FormatError::ByteLength { .. })
        ));
        assert!(matches!(
            Tq1_0.quantize_row(&[0.0; 256], Some(&[1.0; 3]), &mut q),
            Err(FormatError::ImportanceLength { .. })
        ));
        assert!(Tq1_0.dequantize_row(&q, &mut [0.0; 512]).is_err());
    }
}
