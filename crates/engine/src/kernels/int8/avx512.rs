//! The AVX-512 VNNI micro-kernel: four panels (64 rows) × up to six tokens in 24 accumulators.
//! Per group of four columns it loads four 64-byte weight vectors and broadcasts four activation
//! bytes per token; each `vpdpbusd` then adds 64 byte products (16 rows × 4 columns) into i32.

use super::{Acc, Int8Acts, Int8Matrix, BLOCK_PANELS, PANEL};
use std::arch::x86_64::*;

pub(super) fn block(w: &Int8Matrix, p0: usize, a: &Int8Acts, t0: usize, nt: usize, acc: &mut Acc) {
    assert!((p0 + BLOCK_PANELS) * w.kp * PANEL <= w.packed.len());
    assert!((t0 + nt) * a.kp <= a.codes.len() && a.kp == w.kp);
    // SAFETY: reached only through `micro_kernel` at the AVX-512 level, whose CPU check covers
    // avx512f/bw/vnni; the panels and token rows read lie inside the buffers (asserted above).
    unsafe {
        match nt {
            1 => tokens::<1>(w, p0, a, t0, acc),
            2 => tokens::<2>(w, p0, a, t0, acc),
            3 => tokens::<3>(w, p0, a, t0, acc),
            4 => tokens::<4>(w, p0, a, t0, acc),
            5 => tokens::<5>(w, p0, a, t0, acc),
            6 => tokens::<6>(w, p0, a, t0, acc),
            _ => unreachable!("at most six tokens per block"),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tokens<const T: usize>(w: &Int8Matrix, p0: usize, a: &Int8Acts, t0: usize, acc: &mut Acc) {
    let kp = w.kp;
    let panel_bytes = kp * PANEL;
    let wp = w.packed.as_ptr().add(p0 * panel_bytes);
    let ap = a.codes.as_ptr().add(t0 * kp);
    let mut c = [[_mm512_setzero_si512(); T]; BLOCK_PANELS];
    for g in 0..kp / 4 {
        let wv: [__m512i; BLOCK_PANELS] =
            std::array::from_fn(|p| _mm512_loadu_si512(wp.add(p * panel_bytes + g * 64) as *const _));
        for t in 0..T {
            let x = _mm512_set1_epi32((ap.add(t * kp + g * 4) as *const i32).read_unaligned());
            for p in 0..BLOCK_PANELS {
                c[p][t] = _mm512_dpbusd_epi32(c[p][t], x, wv[p]);
            }
        }
    }
    for t in 0..T {
        for p in 0..BLOCK_PANELS {
            _mm512_storeu_si512(acc[t][p * PANEL..].as_mut_ptr() as *mut _, c[p][t]);
        }
    }
}
