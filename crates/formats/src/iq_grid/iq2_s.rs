//! IQ2_S, 2.56 bpw: 82-byte blocks of 256.
//!
//! Layout: `d: f16`, `qs: [u8; 32]` (low 8 bits of the [`IQ2S_GRID`] index of each 8 elements),
//! `signs: [u8; 32]` (one explicit sign bit per element), `qh: [u8; 8]` (2 high index bits per
//! 8 elements, 4 per byte), `scales: [u8; 8]` (two 4-bit scales per 32 elements, low nibble
//! first). Element = `d * (0.5 + s) * 0.25 * magnitude * sign`.

use super::grids::IQ2S_GRID;
use super::put8_signed;
use crate::float::read_f16;
use crate::GgmlType;

pub struct Iq2S;

const BYTES: usize = 82;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let (qs, rest) = b[2..BYTES].split_at(32);
    let (signs, rest) = rest.split_at(32);
    let (qh, scales) = rest.split_at(8);
    for (ib, out32) in out.chunks_exact_mut(32).enumerate() {
        let sc = scales[ib];
        let db = [
            d * (0.5 + (sc & 0xf) as f32) * 0.25,
            d * (0.5 + (sc >> 4) as f32) * 0.25,
        ];
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let k = 4 * ib + l;
            let idx = qs[k] as usize | (((qh[ib] >> (2 * l)) & 3) as usize) << 8;
            put8_signed(out8, db[l / 2], IQ2S_GRID[idx], signs[k]);
        }
    }
}

read_only_format!(Iq2S, GgmlType::IQ2_S, BYTES, dequantize_block);
