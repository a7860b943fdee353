//! Row ↔ block plumbing shared by the block formats: length checks, then one call per block.
//!
//! Each format only writes `quantize_block` / `dequantize_block` over fixed-size slices; the
//! row-level trait methods are generated here so the checks cannot drift between types.

use crate::block::check_row;
use crate::{FormatError, GgmlType};

/// Runs `f(block_src, block_importance, block_dst)` over every block of a row (lengths checked
/// by the caller).
#[inline(always)]
pub fn blocks(
    ty: GgmlType,
    src: &[f32],
    importance: Option<&[f32]>,
    dst: &mut [u8],
    mut f: impl FnMut(&[f32], Option<&[f32]>, &mut [u8]),
) {
    let (be, bb) = (ty.block_elems(), ty.block_bytes());
    match importance {
        Some(imp) => {
            for ((x, q), out) in src
                .chunks_exact(be)
                .zip(imp.chunks_exact(be))
                .zip(dst.chunks_exact_mut(bb))
            {
                f(x, Some(q), out);
            }
        }
        None => {
            for (x, out) in src.chunks_exact(be).zip(dst.chunks_exact_mut(bb)) {
                f(x, None, out);
            }
        }
    }
}

/// Runs `f(block_bytes, block_dst)` over every block of a row.
#[inline(always)]
pub fn dequantize_blocks(
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
    mut f: impl FnMut(&[u8], &mut [f32]),
) -> Result<(), FormatError> {
    check_row(ty, dst.len(), src.len(), None)?;
    let (be, bb) = (ty.block_elems(), ty.block_bytes());
    for (b, out) in src.chunks_exact(bb).zip(dst.chunks_exact_mut(be)) {
        f(b, out);
    }
    Ok(())
}

/// Implements [`crate::BlockFormat`] for a unit struct from its two block functions.
macro_rules! impl_block_format {
    ($name:ident, $ty:expr, $quant:path, $dequant:path, grid) => {
        $crate::blockwise::impl_block_format!(@impl $name, $ty, $quant, $dequant,
            fn grid(&self) -> Option<&'static dyn $crate::grid::BlockGrid> {
                Some(&$name)
            }
        );
    };
    ($name:ident, $ty:expr, $quant:path, $dequant:path) => {
        $crate::blockwise::impl_block_format!(@impl $name, $ty, $quant, $dequant,);
    };
    (@impl $name:ident, $ty:expr, $quant:path, $dequant:path, $($extra:item)*) => {
        impl $crate::block::BlockFormat for $name {
            fn ty(&self) -> $crate::GgmlType {
                $ty
            }
            fn quantize_row(
                &self,
                src: &[f32],
                importance: Option<&[f32]>,
                dst: &mut [u8],
            ) -> Result<(), $crate::FormatError> {
                $crate::block::check_row($ty, src.len(), dst.len(), importance.map(<[f32]>::len))?;
                // The whole per-block code is inlined into an AVX2+FMA copy of the row loop, so
                // the compiler vectorises it with wide registers. Rust keeps IEEE semantics (no
                // reassociation, no implicit fusing), so both copies give identical bytes.
                #[cfg(target_arch = "x86_64")]
                if $crate::search::vector_path() {
                    #[target_feature(enable = "avx2,fma")]
                    fn row_avx2(src: &[f32], importance: Option<&[f32]>, dst: &mut [u8]) {
                        $crate::blockwise::blocks($ty, src, importance, dst, |x, q, o| {
                            $quant(x, q, o)
                        });
                    }
                    // SAFETY: the CPU has AVX2 and FMA (checked by vector_path).
                    unsafe { row_avx2(src, importance, dst) };
                    return Ok(());
                }
                $crate::blockwise::blocks($ty, src, importance, dst, $quant);
                Ok(())
            }
            fn dequantize_row(
                &self,
                src: &[u8],
                dst: &mut [f32],
            ) -> Result<(), $crate::FormatError> {
                // Same trick as above: the prompt path of the engine dequantizes every weight
                // row once per batch, and the wide copy of this loop is several times faster.
                #[cfg(target_arch = "x86_64")]
                if $crate::search::vector_path() {
                    #[target_feature(enable = "avx2,fma")]
                    fn row_avx2(src: &[u8], dst: &mut [f32]) -> Result<(), $crate::FormatError> {
                        $crate::blockwise::dequantize_blocks($ty, src, dst, |b, y| $dequant(b, y))
                    }
                    // SAFETY: the CPU has AVX2 and FMA (checked by vector_path).
                    return unsafe { row_avx2(src, dst) };
                }
                $crate::blockwise::dequantize_blocks($ty, src, dst, $dequant)
            }
            $($extra)*
        }
    };
}
pub(crate) use impl_block_format;

/// Largest finite f16: scales are clamped to it so huge inputs saturate instead of storing inf
/// (which would dequantize to inf or NaN).
pub const F16_MAX: f32 = 65504.0;

/// Clamps a scale into f16 range and stores it; returns the value the reader will see.
#[inline(always)]
pub fn store_f16(bytes: &mut [u8], v: f32) -> f32 {
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(-F16_MAX, F16_MAX)
    };
    crate::float::write_f16(bytes, v)
}
