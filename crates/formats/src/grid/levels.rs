//! The level sets of the block types, each with the rounding rule its own quantizer uses, so that
//! the nearest code under fixed scales is the code that quantizer would have written.

use super::GroupParams;
use crate::iq4::KVALUES;
use crate::mxfp4::E2M1_DOUBLED;
use crate::search::{round_even, Codebook16, Grid};

/// Which values a code stands for (before the group's scale and offset).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Levels {
    /// Integers `lo..=hi`, code = level − lo; rounding `(v − offset)·(1/scale)` half to even.
    Int { lo: i32, hi: i32 },
    /// Affine integer codes `0..=qmax` with an integer zero point: `round(v / scale) + zero`,
    /// clamped (PyTorch's and GPTQ's rule, as [`crate::affine::quantize_value`]).
    Affine { qmax: i32 },
    /// IQ4's 16-level codebook; ties to the lower level.
    Iq4,
    /// MXFP4's doubled E2M1 values; zero always code 0.
    Mxfp4,
    /// Trits −1, 0, +1 as codes 0, 1, 2; `|v| > scale/2` leaves zero.
    Ternary,
}

impl Levels {
    /// Number of codes.
    pub fn n_codes(&self) -> usize {
        match *self {
            Levels::Int { lo, hi } => (hi - lo + 1) as usize,
            Levels::Affine { qmax } => qmax as usize + 1,
            Levels::Iq4 | Levels::Mxfp4 => 16,
            Levels::Ternary => 3,
        }
    }

    /// The level of a code.
    #[inline(always)]
    pub fn level(&self, code: u8) -> f32 {
        match *self {
            Levels::Int { lo, .. } => (code as i32 + lo) as f32,
            Levels::Affine { .. } => code as f32,
            Levels::Iq4 => KVALUES[(code & 15) as usize] as f32,
            Levels::Mxfp4 => E2M1_DOUBLED[(code & 15) as usize] as f32,
            Levels::Ternary => code as f32 - 1.0,
        }
    }

    /// The nearest code to `v` in a group with parameters `p`.
    #[inline(always)]
    pub fn code(&self, v: f32, p: &GroupParams) -> u8 {
        match *self {
            Levels::Int { lo, hi } => {
                let inv = inverse(p.scale);
                let (lo, hi) = (lo as f32, hi as f32);
                let t = (v - p.offset) * inv;
                let t = if t > lo { t } else { lo };
                let t = if t < hi { t } else { hi };
                (round_even(t) - lo) as u8
            }
            Levels::Affine { qmax } => {
                let q = if p.scale != 0.0 {
                    (v / p.scale).round_ties_even() + p.zero
                } else {
                    p.zero
                };
                q.clamp(0.0, qmax as f32) as u8
            }
            Levels::Iq4 => iq4_book().code((v - p.offset) * inverse(p.scale)),
            Levels::Mxfp4 => crate::mxfp4::nearest_code(v / p.scale),
            Levels::Ternary => {
                let d = p.scale;
                if !(d > 0.0 && d.is_finite()) {
                    1
                } else if v > 0.5 * d {
                    2
                } else if v < -(0.5 * d) {
                    0
                } else {
                    1
                }
            }
        }
    }
}

/// `1/scale`, or 0 for a zero or non-finite scale (everything then rounds to level 0), as
/// [`crate::search::assign`] does.
#[inline(always)]
fn inverse(scale: f32) -> f32 {
    if scale != 0.0 && scale.is_finite() {
        1.0 / scale
    } else {
        0.0
    }
}

fn iq4_book() -> &'static Codebook16 {
    static BOOK: std::sync::OnceLock<Codebook16> = std::sync::OnceLock::new();
    BOOK.get_or_init(|| Codebook16::new(&KVALUES))
}
