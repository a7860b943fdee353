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
                for ($b, out) in src.chunks_exact($width).zip(dst.iter_mut()) {
                    *out = $dec;
                }
                Ok(())
            }
        }
    };
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
