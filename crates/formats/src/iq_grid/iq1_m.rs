//! IQ1_M, 1.75 bpw: 56-byte blocks of 256, the one IQ type without a leading scale field.
//!
//! Layout: `qs: [u8; 32]` (low 8 bits of one [`IQ1S_GRID`] index per 8 elements), `qh: [u8; 16]`
//! (one nibble per 8 elements, low nibble first: bits 0..3 are the high index bits, bit 3 the
//! sign of `delta`), `scales: [u16; 4]`. Each scales word holds four 3-bit scales, one per 16
//! elements (bits 0..12), and its top nibble is one quarter of the f16 super-scale `d` (word 0
//! holds the lowest nibble). Element = `d * (2s + 1) * (grid value + delta)`.

use super::grids::{IQ1S_GRID, IQ1_DELTA};
use super::{put8_shifted, u16_at};
use crate::float::f16_bits_to_f32;
use crate::GgmlType;

pub struct Iq1M;

const BYTES: usize = 56;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let (qs, rest) = b[..BYTES].split_at(32);
    let (qh, scales) = rest.split_at(16);
    let sc = [
        u16_at(scales, 0),
        u16_at(scales, 2),
        u16_at(scales, 4),
        u16_at(scales, 6),
    ];
    let d_bits =
        (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    let d = f16_bits_to_f32(d_bits);
    for (ib, out32) in out.chunks_exact_mut(32).enumerate() {
        let s = (sc[ib / 2] >> (6 * (ib % 2))) as usize;
        let dl = [
            d * (2 * (s & 7) + 1) as f32,
            d * (2 * ((s >> 3) & 7) + 1) as f32,
        ];
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let k = 4 * ib + l;
            let h = (qh[k / 2] >> (4 * (k % 2))) as usize;
            let idx = qs[k] as usize | (h & 7) << 8;
            let delta = if h & 8 != 0 { -IQ1_DELTA } else { IQ1_DELTA };
            put8_shifted(out8, dl[l / 2], IQ1S_GRID[idx], delta);
        }
    }
}

read_only_format!(Iq1M, GgmlType::IQ1_M, BYTES, dequantize_block);
