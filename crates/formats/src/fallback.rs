//! Which type replaces a 256-element block type on rows it cannot split.
//!
//! One rule for everything that picks types (the quantize planner, the engine's in-memory
//! quantization): keep the bit budget. llama.cpp replaces Q4_K by Q5_0 (one bit more per weight),
//! so a model with 576- or 640-wide rows silently grows; lowbit uses IQ4_NL at the same 4.5 bpw.

use crate::GgmlType;

/// The 32-element type with the same bit budget as `ty`, never a smaller one.
pub fn fallback_for(ty: GgmlType) -> GgmlType {
    use GgmlType as T;
    match ty {
        T::Q5_K => T::Q5_0,
        T::Q6_K | T::Q8_K => T::Q8_0,
        _ if ty.bits_per_weight() <= 4.5 => T::IQ4_NL,
        _ => T::Q8_0,
    }
}

/// `wanted` if rows of `row_len` elements split into its blocks, else its fallback, else F16.
pub fn fit_row(wanted: GgmlType, row_len: u64) -> GgmlType {
    [wanted, fallback_for(wanted)]
        .into_iter()
        .find(|t| row_len % t.block_elems() as u64 == 0)
        .unwrap_or(GgmlType::F16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use GgmlType as T;

    #[test]
    fn keeps_the_bit_budget_on_short_rows() {
        assert_eq!(fit_row(T::Q8_0, 384), T::Q8_0);
        assert_eq!(fit_row(T::Q4_K, 1536), T::Q4_K);
        assert_eq!(fit_row(T::Q4_K, 384), T::IQ4_NL);
        assert_eq!(fit_row(T::Q5_K, 384), T::Q5_0);
        assert_eq!(fit_row(T::Q6_K, 384), T::Q8_0);
        assert_eq!(fit_row(T::Q8_0, 48), T::F16);
        assert_eq!(fit_row(T::Q4_0, 33), T::F16);
    }
}
