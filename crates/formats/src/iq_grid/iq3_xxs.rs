//! IQ3_XXS, 3.06 bpw: 98-byte blocks of 256.
//!
//! Layout: `d: f16`, `qs: [u8; 64]` (one [`IQ3XXS_GRID`] index per 4 elements), then 8
//! little-endian u32, one per 32 elements: four 7-bit sign indices into [`KSIGNS_IQ2XS`] (bits
//! 0..28, each covering 8 elements) and a 4-bit scale `s` (bits 28..32).
//! Element = `d * (0.5 + s) * 0.5 * magnitude * sign`.

use super::grids::{IQ3XXS_GRID, KSIGNS_IQ2XS};
use super::{put8_signed, u32_at};
use crate::float::read_f16;
use crate::GgmlType;

pub struct Iq3Xxs;

const BYTES: usize = 98;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let (qs, scales_signs) = b[2..BYTES].split_at(64);
    for ((q, ss), out32) in qs
        .chunks_exact(8)
        .zip(scales_signs.chunks_exact(4))
        .zip(out.chunks_exact_mut(32))
    {
        let aux = u32_at(ss, 0);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let signs = KSIGNS_IQ2XS[((aux >> (7 * l)) & 127) as usize];
            // Two 4-value grid entries make the 8 magnitudes one sign byte covers.
            let lo = IQ3XXS_GRID[q[2 * l] as usize] as u64;
            let hi = IQ3XXS_GRID[q[2 * l + 1] as usize] as u64;
            put8_signed(out8, db, lo | hi << 32, signs);
        }
    }
}

read_only_format!(Iq3Xxs, GgmlType::IQ3_XXS, BYTES, dequantize_block);
