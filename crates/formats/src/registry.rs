//! Type → implementation lookup. Each family module exposes `lookup`, so adding a type touches only
//! its own family.

use crate::block::BlockFormat;
use crate::{float, iq4, iq_grid, kquants, legacy, mxfp4, ternary, GgmlType};

/// The block format for `ty`, or `None` for integer types (and any type not yet implemented).
pub fn block_format(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    match ty {
        GgmlType::F32 => Some(&float::F32),
        GgmlType::F16 => Some(&float::F16),
        GgmlType::BF16 => Some(&float::Bf16),
        GgmlType::F64 => Some(&float::F64),
        _ => legacy::lookup(ty)
            .or_else(|| kquants::lookup(ty))
            .or_else(|| iq4::lookup(ty))
            .or_else(|| ternary::lookup(ty))
            .or_else(|| mxfp4::lookup(ty))
            .or_else(|| iq_grid::lookup(ty)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_reports_its_own_type() {
        for t in GgmlType::all() {
            if let Some(f) = block_format(t) {
                assert_eq!(f.ty(), t);
                assert_eq!(f.block_elems(), t.block_elems());
                assert_eq!(f.block_bytes(), t.block_bytes());
            }
        }
    }
}
