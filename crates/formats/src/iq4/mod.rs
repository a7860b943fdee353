//! The 4-bit non-linear formats: one shared 16-level codebook, per-block (IQ4_NL) or per-sub-block
//! (IQ4_XS) scales.
// ggml's type names read better than the camel-case lint wants.
#![allow(non_camel_case_types)]

mod codebook;
mod iq4_nl;
mod iq4_xs;

pub use codebook::KVALUES;
pub use iq4_nl::IQ4_NL;
pub use iq4_xs::IQ4_XS;

use crate::block::BlockFormat;
use crate::GgmlType;

/// The formats of this family.
pub fn lookup(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    Some(match ty {
        GgmlType::IQ4_NL => &IQ4_NL,
        GgmlType::IQ4_XS => &IQ4_XS,
        _ => return None,
    })
}
