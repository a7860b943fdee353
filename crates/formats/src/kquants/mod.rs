//! The k-quants: 256-element super-blocks whose sub-block scales are themselves quantized.
// ggml's type names (Q4_K, Q8_0) read better than the camel-case lint wants.
#![allow(non_camel_case_types)]

mod q2_k;
mod q3_k;
mod q4_k;
mod q5_k;
mod q6_k;
mod q8_k;
mod reference;
mod scales6;
pub(crate) mod superblock;

pub use q2_k::Q2_K;
pub use q3_k::Q3_K;
pub use q4_k::Q4_K;
pub use q5_k::Q5_K;
pub use q6_k::Q6_K;
pub use q8_k::Q8_K;

use crate::block::BlockFormat;
use crate::GgmlType;

/// The formats of this family.
pub fn lookup(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    Some(match ty {
        GgmlType::Q2_K => &Q2_K,
        GgmlType::Q3_K => &Q3_K,
        GgmlType::Q4_K => &Q4_K,
        GgmlType::Q5_K => &Q5_K,
        GgmlType::Q6_K => &Q6_K,
        GgmlType::Q8_K => &Q8_K,
        _ => return None,
    })
}
