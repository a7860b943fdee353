//! MXFP4 (OCP microscaling FP4): 32 E2M1 values sharing one E8M0 power-of-two exponent, 17 bytes
//! per block, as ggml's `block_mxfp4`.

mod e8m0;
mod format;

pub use e8m0::{e8m0_to_f32, e8m0_to_f32_half};
pub use format::{Mxfp4, E2M1_DOUBLED};
pub(crate) use format::nearest_code;

use crate::block::BlockFormat;
use crate::GgmlType;

/// The formats of this family.
pub fn lookup(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    match ty {
        GgmlType::MXFP4 => Some(&Mxfp4),
        _ => None,
    }
}
