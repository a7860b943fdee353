//! The AVX2 micro-kernel. AVX2 has no byte dot product that cannot saturate (`vpmaddubsw` adds
//! two u8·i8 products in i16), so bytes are widened to i16 and multiplied by `vpmaddwd`, which is
//! exact: each 16-byte quarter of a weight group (4 rows × 4 columns) becomes one register, the
//! token's four activation bytes are broadcast as four i16, and the i32 lanes hold two partial
//! sums per row, added at the end.

use super::{Acc, Int8Acts, Int8Matrix, BLOCK_PANELS, PANEL};
use std::arch::x86_64::*;

pub(super) fn block(w: &Int8Matrix, p0: usize, a: &Int8Acts, t0: usize, nt: usize, acc: &mut Acc) {
    assert!((p0 + BLOCK_PANELS) * w.kp * PANEL <= w.packed.len());
    assert!((t0 + nt) * a.kp <= a.codes.len() && a.kp == w.kp);
    for p in 0..BLOCK_PANELS {
        let mut t = 0;
        while t < nt {
            // SAFETY: reached only through `micro_kernel` at the AVX2 level or above, whose CPU
            // check covers avx2; the panel and token rows lie inside the buffers (asserted above).
            unsafe {
                if nt - t >= 2 {
                    panel::<2>(w, p0 + p, a, t0 + t, p, t, acc);
                    t += 2;
                } else {
                    panel::<1>(w, p0 + p, a, t0 + t, p, t, acc);
                    t += 1;
                }
            }
        }
    }
}

/// Four activation bytes as four i16, repeated across the register.
#[inline(always)]
unsafe fn quad(p: *const u8) -> __m256i {
    let v = (p as *const u32).read_unaligned() as u64;
    let spread = (v & 0xff) | ((v & 0xff00) << 8) | ((v & 0xff_0000) << 16) | ((v & 0xff00_0000) << 24);
    _mm256_set1_epi64x(spread as i64)
}

#[target_feature(enable = "avx2")]
unsafe fn panel<const T: usize>(w: &Int8Matrix, pi: usize, a: &Int8Acts, t0: usize, p: usize, ti: usize, acc: &mut Acc) {
    let kp = w.kp;
    let wp = w.packed.as_ptr().add(pi * kp * PANEL);
    let ap = a.codes.as_ptr().add(t0 * kp);
    let mut c = [[_mm256_setzero_si256(); 4]; T];
    for g in 0..kp / 4 {
        let wv: [__m256i; 4] = std::array::from_fn(|q| {
            _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(g * 64 + q * 16) as *const __m128i))
        });
        for t in 0..T {
            let x = quad(ap.add(t * kp + g * 4));
            for q in 0..4 {
                c[t][q] = _mm256_add_epi32(c[t][q], _mm256_madd_epi16(wv[q], x));
            }
        }
    }
    for t in 0..T {
        for q in 0..4 {
            let mut lanes = [0i32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, c[t][q]);
            for i in 0..4 {
                acc[ti + t][p * PANEL + q * 4 + i] = lanes[2 * i] + lanes[2 * i + 1];
            }
        }
    }
}
