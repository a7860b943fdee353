//! The lattice-codebook IQ formats: IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S.
//!
//! Read-only by design: their quantizers are searches over large codebooks that lowbit does not
//! reproduce, but GGUFs using them are common, so every one must open. Dequantization follows
//! ggml's reference exactly (same operations in the same order), hence is bit-identical to ggml
//! and gguf-py for every finite scale.
//!
//! Each type's file holds its block layout and a `dequantize_block`; the shared grids are
//! generated data in `grids.rs`.

use crate::block::BlockFormat;
use crate::GgmlType;

/// Implements [`BlockFormat`] for a read-only 256-element block type from its `dequantize_block`
/// (which receives exactly one block's bytes and its 256 outputs).
macro_rules! read_only_format {
    ($name:ident, $ty:expr, $bytes:expr, $dequantize_block:path) => {
        impl $crate::block::BlockFormat for $name {
            fn ty(&self) -> $crate::GgmlType {
                $ty
            }

            fn can_quantize(&self) -> bool {
                false
            }

            fn quantize_row(
                &self,
                _src: &[f32],
                _importance: Option<&[f32]>,
                _dst: &mut [u8],
            ) -> Result<(), $crate::FormatError> {
                Err($crate::FormatError::QuantizeUnsupported($ty))
            }

            fn dequantize_row(
                &self,
                src: &[u8],
                dst: &mut [f32],
            ) -> Result<(), $crate::FormatError> {
                $crate::block::check_row($ty, dst.len(), src.len(), None)?;
                for (block, out) in src
                    .chunks_exact($bytes)
                    .zip(dst.chunks_exact_mut(super::QK_K))
                {
                    $dequantize_block(block, out);
                }
                Ok(())
            }
        }
    };
}

mod grids;
mod iq1_m;
mod iq1_s;
mod iq2_s;
mod iq2_xs;
mod iq2_xxs;
mod iq3_s;
mod iq3_xxs;

pub use iq1_m::Iq1M;
pub use iq1_s::Iq1S;
pub use iq2_s::Iq2S;
pub use iq2_xs::Iq2Xs;
pub use iq2_xxs::Iq2Xxs;
pub use iq3_s::Iq3S;
pub use iq3_xxs::Iq3Xxs;

/// Elements per block of every type in this family.
const QK_K: usize = 256;

/// The formats of this family.
pub fn lookup(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    match ty {
        GgmlType::IQ1_S => Some(&Iq1S),
        GgmlType::IQ1_M => Some(&Iq1M),
        GgmlType::IQ2_XXS => Some(&Iq2Xxs),
        GgmlType::IQ2_XS => Some(&Iq2Xs),
        GgmlType::IQ2_S => Some(&Iq2S),
        GgmlType::IQ3_XXS => Some(&Iq3Xxs),
        GgmlType::IQ3_S => Some(&Iq3S),
        _ => None,
    }
}

/// Writes `scale * m_j * s_j` for the 8 unsigned magnitudes `m_j` packed in `grid` (byte j) and
/// signs `s_j = -1` where bit j of `signs` is set. Multiplying by ±1 (rather than negating)
/// keeps even NaN results (from a NaN/inf scale) bit-identical to gguf-py's.
#[inline(always)]
fn put8_signed(out: &mut [f32], scale: f32, grid: u64, signs: u8) {
    let mags = grid.to_le_bytes();
    for (j, (o, &m)) in out[..8].iter_mut().zip(mags.iter()).enumerate() {
        let sign = f32::from_bits(0x3f80_0000 | (((signs >> j) & 1) as u32) << 31);
        *o = scale * m as f32 * sign;
    }
}

/// Writes `scale * (v_j + delta)` for the 8 signed values `v_j` (one `i8` per byte of `grid`).
#[inline(always)]
fn put8_shifted(out: &mut [f32], scale: f32, grid: u64, delta: f32) {
    let vals = grid.to_le_bytes();
    for (o, &v) in out[..8].iter_mut().zip(vals.iter()) {
        *o = scale * (v as i8 as f32 + delta);
    }
}

#[inline(always)]
fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

#[inline(always)]
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_covers_exactly_this_family() {
        let family = [
            GgmlType::IQ1_S,
            GgmlType::IQ1_M,
            GgmlType::IQ2_XXS,
            GgmlType::IQ2_XS,
            GgmlType::IQ2_S,
            GgmlType::IQ3_XXS,
            GgmlType::IQ3_S,
        ];
        for t in GgmlType::all() {
            match lookup(t) {
                Some(f) => {
                    assert!(family.contains(&t), "{t} is not a lattice IQ type");
                    assert_eq!(f.ty(), t);
                    assert_eq!(f.block_elems(), QK_K);
                    assert!(!f.can_quantize());
                }
                None => assert!(!family.contains(&t), "{t} missing from lookup"),
            }
        }
    }
}
