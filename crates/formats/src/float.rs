//! Plain float storage: F32, F16, BF16 (and F64, read-only in practice).
//!
//! F16 uses the `half` crate (IEEE round-to-nearest-even, as ggml's F16C path). BF16 is written by
//! hand because ggml's conversion has a specific NaN rule (quiet the NaN, keep the sign) that must
//! be reproduced bit for bit.

use crate::block::{check_row, BlockFormat};
use crate::{FormatError, GgmlType};

pub struct F32;
pub struct F16;
pub struct Bf16;
pub struct F64;

/// ggml's fp32 → bf16: round to nearest even; NaN stays NaN with its quiet bit set.
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

#[inline]
pub fn bf16_bits_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

#[inline]
pub fn f16_bits_to_f32(b: u16) -> f32 {
    half::f16::from_bits(b).to_f32()
}

/// `x` rounded to the nearest f16 (as a scale stored in f16 reads back), saturating at ±65504
/// so a huge scale stays finite.
#[inline]
pub fn round_f16(x: f32) -> f32 {
    f16_bits_to_f32(f32_to_f16_bits(x.clamp(-65504.0, 65504.0)))
}

/// Reads a little-endian f16 at `bytes[0..2]` as f32; the scale field of most block types.
#[inline]
pub fn read_f16(bytes: &[u8]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([bytes[0], bytes[1]]))
}

/// Writes `x` rounded to f16 into `bytes[0..2]` and returns the value actually stored, so
/// quantizers can compute their codes against the scale the reader will see.
#[inline]
pub fn write_f16(bytes: &mut [u8], x: f32) -> f32 {
    let b = f32_to_f16_bits(x);
    bytes[..2].copy_from_slice(&b.to_le_bytes());
    f16_bits_to_f32(b)
}

macro_rules! scalar_format {
    ($name:ident, $ty:expr, $width:expr, |$x:ident| $enc:expr, |$b:ident| $dec:expr) => {
        impl BlockFormat for $name {
            fn ty(&self) -> GgmlType {
                $ty
            }
            fn quantize_row(
                &self,
                src: &[f32],
                importance: Option<&[f32]>,
                dst: &mut [u8],
            ) -> Result<(), FormatError> {
                check_row($ty, src.len(), dst.len(), importance.map(<[f32]>::len))?;
                for (&$x, out) in src.iter().zip(dst.chunks_exact_mut($width)) {
                    out.copy_from_slice(&$enc);
                }
                Ok(())
            }
            fn dequantize_row(&self, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
                check_row($ty, dst.len(), src.len(), None)?;
                if $ty == GgmlType::F16 && f16_row_fast(src, dst) {
                    return Ok(());
                }
                for ($b, out) in src.chunks_exact($width).zip(dst.iter_mut()) {
                    *out = $dec;
                }
                Ok(())
            }
        }
    };
}

/// F16 → f32 eight at a time with the F16C conversion instruction (exact, like the scalar path);
/// false when the CPU lacks it. The engine expands F16 weights row by row for every prompt batch.
fn f16_row_fast(src: &[u8], dst: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("f16c") && std::arch::is_x86_feature_detected!("avx") {
        #[target_feature(enable = "avx,f16c")]
        unsafe fn wide(src: &[u8], dst: &mut [f32]) {
            use std::arch::x86_64::*;
            let n = dst.len() / 8 * 8;
            for i in (0..n).step_by(8) {
                // SAFETY: i + 8 ≤ dst.len() and src holds 2 bytes per element (checked by caller).
                let h = _mm_loadu_si128(src.as_ptr().add(2 * i) as *const __m128i);
                _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            }
            for i in n..dst.len() {
                dst[i] = read_f16(&src[2 * i..]);
            }
        }
        // SAFETY: the CPU has AVX and F16C (checked above); lengths were checked by check_row.
        unsafe { wide(src, dst) };
        return true;
    }
    let _ = (src, dst);
    false
}

scalar_format!(F32, GgmlType::F32, 4, |x| x.to_le_bytes(), |b| {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
});
scalar_format!(
    F16,
    GgmlType::F16,
    2,
    |x| f32_to_f16_bits(x).to_le_bytes(),
    |b| read_f16(b)
);
scalar_format!(
    Bf16,
    GgmlType::BF16,
    2,
    |x| f32_to_bf16_bits(x).to_le_bytes(),
    |b| bf16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]))
);
scalar_format!(
    F64,
    GgmlType::F64,
    8,
    |x| (x as f64).to_le_bytes(),
    |b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32
);

#[cfg(test)]
mod tests {
    #[test]
    fn f16_rows_expand_exactly_for_every_bit_pattern() {
        let src: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
        // 65536 + 3 elements: an odd tail after the eight-wide loop.
        let mut src3 = src.clone();
        src3.extend_from_slice(&[0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]);
        let mut dst = vec![0f32; src3.len() / 2];
        crate::block_format(GgmlType::F16)
            .unwrap()
            .dequantize_row(&src3, &mut dst)
            .unwrap();
        for (i, y) in dst.iter().enumerate() {
            let want = read_f16(&src3[2 * i..]);
            assert!(y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()), "{i}");
        }
    }

    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_nan() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is exactly half-way between two bf16 values: ties go to the even one.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert!(bf16_bits_to_f32(f32_to_bf16_bits(f32::NAN)).is_nan());
    }

    #[test]
    fn f16_round_trip_of_representable_values_is_exact() {
        let src = [0.0f32, -1.5, 65504.0, 6.1035156e-5, -0.099975586];
        let mut bytes = [0u8; 10];
        F16.quantize_row(&src, None, &mut bytes).unwrap();
        let mut back = [0f32; 5];
        F16.dequantize_row(&bytes, &mut back).unwrap();
        assert_eq!(src, back);
    }
}
