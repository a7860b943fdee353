//! The portable micro-kernel, and the definition the SIMD ones are tested against bit for bit.

use super::{Acc, Int8Acts, Int8Matrix, BLOCK_PANELS, PANEL};

pub(super) fn block(w: &Int8Matrix, p0: usize, a: &Int8Acts, t0: usize, nt: usize, acc: &mut Acc) {
    let kp = w.kp;
    for (t, sums) in acc.iter_mut().enumerate().take(nt) {
        let x = &a.codes[(t0 + t) * kp..][..kp];
        for p in 0..BLOCK_PANELS {
            let panel = &w.packed[(p0 + p) * kp * PANEL..][..kp * PANEL];
            for i in 0..PANEL {
                let mut s = 0i32;
                for (g, x4) in x.chunks_exact(4).enumerate() {
                    let w4 = &panel[g * 64 + i * 4..][..4];
                    s += (0..4).map(|j| w4[j] as i32 * x4[j] as i32).sum::<i32>();
                }
                sums[p * PANEL + i] = s;
            }
        }
    }
}
