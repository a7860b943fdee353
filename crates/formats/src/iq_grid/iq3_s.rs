//! IQ3_S, 3.44 bpw: 110-byte blocks of 256.
//!
//! Layout: `d: f16`, `qs: [u8; 64]` (low 8 bits of one [`IQ3S_GRID`] index per 4 elements),
//! `qh: [u8; 8]` (the 9th index bit, one byte per 32 elements, bit k for its k-th `qs`),
//! `signs: [u8; 32]` (one explicit sign bit per element), `scales: [u8; 4]` (two 4-bit scales per
//! byte, one per 32 elements, low nibble first). Element = `d * (1 + 2s) * magnitude * sign`.

use super::grids::IQ3S_GRID;
use super::put8_signed;
use crate::float::read_f16;
use crate::GgmlType;

pub struct Iq3S;

const BYTES: usize = 110;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let (qs, rest) = b[2..BYTES].split_at(64);
    let (qh, rest) = rest.split_at(8);
    let (signs, scales) = rest.split_at(32);
    for (ib, out32) in out.chunks_exact_mut(32).enumerate() {
        let s = (scales[ib / 2] >> (4 * (ib % 2))) & 0xf;
        let db = d * (1 + 2 * s as u32) as f32;
        let h = qh[ib] as usize;
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let k = 8 * ib + 2 * l;
            let lo = IQ3S_GRID[qs[k] as usize | ((h >> (2 * l)) & 1) << 8] as u64;
            let hi = IQ3S_GRID[qs[k + 1] as usize | ((h >> (2 * l + 1)) & 1) << 8] as u64;
            put8_signed(out8, db, lo | hi << 32, signs[4 * ib + l]);
        }
    }
}

read_only_format!(Iq3S, GgmlType::IQ3_S, BYTES, dequantize_block);
