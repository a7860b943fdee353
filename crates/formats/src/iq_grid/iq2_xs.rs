//! IQ2_XS, 2.31 bpw: 74-byte blocks of 256.
//!
//! Layout: `d: f16`, `qs: [u16; 32]`, `scales: [u8; 8]`. Each `qs` entry covers 8 elements: bits
//! 0..9 index [`IQ2XS_GRID`], bits 9..16 index [`KSIGNS_IQ2XS`]. `scales[i]` holds two 4-bit
//! scales, low nibble for the first 16 elements of group i, high nibble for the next 16.
//! Element = `d * (0.5 + s) * 0.25 * magnitude * sign`.

use super::grids::{IQ2XS_GRID, KSIGNS_IQ2XS};
use super::{put8_signed, u16_at};
use crate::float::read_f16;
use crate::GgmlType;

pub struct Iq2Xs;

const BYTES: usize = 74;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let (qs, scales) = b[2..BYTES].split_at(64);
    for ((q, &sc), out32) in qs.chunks_exact(8).zip(scales).zip(out.chunks_exact_mut(32)) {
        let db = [
            d * (0.5 + (sc & 0xf) as f32) * 0.25,
            d * (0.5 + (sc >> 4) as f32) * 0.25,
        ];
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let v = u16_at(q, 2 * l);
            let grid = IQ2XS_GRID[(v & 511) as usize];
            put8_signed(out8, db[l / 2], grid, KSIGNS_IQ2XS[(v >> 9) as usize]);
        }
    }
}

read_only_format!(Iq2Xs, GgmlType::IQ2_XS, BYTES, dequantize_block);
