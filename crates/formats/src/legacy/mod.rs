//! The legacy 32-element formats: one f16 scale (and for `_1` types an f16 offset) per block.
// ggml's type names (Q4_K, Q8_0) read better than the camel-case lint wants.
#![allow(non_camel_case_types)]

mod common;
mod fused;
mod q4_0;
mod q4_1;
mod q5_0;
mod q5_1;
mod q8_0;
mod q8_1;

pub use q4_0::Q4_0;
pub use q4_1::Q4_1;
pub use q5_0::Q5_0;
pub use q5_1::Q5_1;
pub use q8_0::Q8_0;
pub use q8_1::Q8_1;

use crate::block::BlockFormat;
use crate::GgmlType;

/// The formats of this family.
pub fn lookup(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    Some(match ty {
        GgmlType::Q4_0 => &Q4_0,
        GgmlType::Q4_1 => &Q4_1,
        GgmlType::Q5_0 => &Q5_0,
        GgmlType::Q5_1 => &Q5_1,
        GgmlType::Q8_0 => &Q8_0,
        GgmlType::Q8_1 => &Q8_1,
        _ => return None,
    })
}
