//! E8M0: an unsigned biased exponent byte, value `2^(e - 127)`. Built from bits, not `powi`, so
//! the results are exact and identical to ggml's for the two sub-normal codes (e = 0, 1).

/// `2^(e - 127)`. Code 255 is NaN in the OCP spec; ggml does not special-case it and lowbit never
/// writes it, so it simply decodes as +inf here.
#[inline]
pub fn e8m0_to_f32(e: u8) -> f32 {
    if e == 0 {
        f32::from_bits(0x0040_0000)
    } else {
        f32::from_bits((e as u32) << 23)
    }
}

/// `2^(e - 128)`: the multiplier for ggml's doubled E2M1 table (values 0..12 instead of 0..6),
/// which keeps the table integral.
#[inline]
pub fn e8m0_to_f32_half(e: u8) -> f32 {
    if e < 2 {
        f32::from_bits(0x0020_0000 << e)
    } else {
        f32::from_bits(((e - 1) as u32) << 23)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustive_against_powers_of_two() {
        for e in 0..=255u8 {
            let want = (2f64).powi(e as i32 - 128);
            assert_eq!(e8m0_to_f32_half(e) as f64, want, "e={e}");
            if e < 255 {
                assert_eq!(e8m0_to_f32(e) as f64, want * 2.0, "e={e}");
            }
        }
        assert_eq!(e8m0_to_f32(255), f32::INFINITY);
    }
}
