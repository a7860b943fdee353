//! Every integer / float kernel compiled once per instruction-set level from the same source.
//! The portable build is the scalar twin tests compare against; the AVX2 and AVX-512 builds let
//! the compiler vectorise the fixed-size inner loops with wider registers (and the hand-written
//! kernels in `avx2` replace the hottest ones).

use super::act::ActRow;

/// A row kernel: one weight row (raw block bytes) · one prepared activation row.
pub type RowDot = fn(&[u8], &ActRow) -> f32;

macro_rules! level {
    ($m:ident $(, $feat:literal)?) => {
        #[allow(clippy::missing_safety_doc)]
        pub mod $m {
            use super::super::act::ActRow;
            use super::super::{dot_float as f, dot_kquants as k, dot_legacy as l};
            level!(@fns $($feat)? none;
                q4_0 = l::q4_0, q4_1 = l::q4_1, q5_0 = l::q5_0, q5_1 = l::q5_1, q8_0 = l::q8_0,
                iq4_nl = l::iq4_nl, mxfp4 = l::mxfp4,
                q2_k = k::q2_k, q3_k = k::q3_k, q4_k = k::q4_k, q5_k = k::q5_k, q6_k = k::q6_k,
                iq4_xs = k::iq4_xs, tq1_0 = k::tq1_0, tq2_0 = k::tq2_0);
            level!(@floats $($feat)? none; f32w = f::f32_dot, f16w = f::f16_dot, bf16w = f::bf16_dot);
        }
    };
    (@fns none; $($name:ident = $body:path),*) => {
        $(
            pub fn $name(w: &[u8], a: &ActRow) -> f32 {
                unsafe fn inner(w: &[u8], a: &ActRow) -> f32 {
                    $body(w, a)
                }
                // SAFETY: this level's functions are only reached through `table(level)`, which
                // the dispatcher calls with a level the running CPU supports.
                unsafe { inner(w, a) }
            }
        )*
    };
    (@fns $feat:literal none; $($name:ident = $body:path),*) => {
        $(
            pub fn $name(w: &[u8], a: &ActRow) -> f32 {
                #[target_feature(enable = $feat)]
                unsafe fn inner(w: &[u8], a: &ActRow) -> f32 {
                    $body(w, a)
                }
                // SAFETY: this level's functions are only reached through `table(level)`, which
                // the dispatcher calls with a level the running CPU supports.
                unsafe { inner(w, a) }
            }
        )*
    };
    (@floats none; $($name:ident = $body:path),*) => {
        $(
            pub fn $name(w: &[u8], a: &ActRow) -> f32 {
                unsafe fn inner(w: &[u8], x: &[f32]) -> f32 {
                    $body(w, x)
                }
                // SAFETY: as above.
                unsafe { inner(w, a.x) }
            }
        )*
    };
    (@floats $feat:literal none; $($name:ident = $body:path),*) => {
        $(
            pub fn $name(w: &[u8], a: &ActRow) -> f32 {
                #[target_feature(enable = $feat)]
                unsafe fn inner(w: &[u8], x: &[f32]) -> f32 {
                    $body(w, x)
                }
                // SAFETY: as above.
                unsafe { inner(w, a.x) }
            }
        )*
    };
}

level!(scalar);
#[cfg(target_arch = "x86_64")]
level!(avx2, "avx2,fma,f16c");
#[cfg(target_arch = "x86_64")]
level!(
    avx512,
    "avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c"
);

/// Plain f32 dot, vectorised for the widest level, for the dequantize-then-dot paths.
pub fn f32_dot(level: super::cpu::Level, a: &[f32], x: &[f32]) -> f32 {
    use super::cpu::Level;
    match level {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 | Level::Avx2 => {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn inner(a: &[f32], x: &[f32]) -> f32 {
                super::dot_float::dot(a, x)
            }
            // SAFETY: both levels imply AVX2 and FMA.
            unsafe { inner(a, x) }
        }
        _ => super::dot_float::dot(a, x),
    }
}
