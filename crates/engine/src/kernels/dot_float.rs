//! Float dot products for F32 / F16 / BF16 weights (activations stay f32). Sixteen independent
//! accumulators break the add dependency chain and let the compiler use full vector registers.

#[inline(always)]
fn dot_with(n: usize, x: &[f32], w: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let full = n / 16 * 16;
    let mut i = 0;
    while i < full {
        for k in 0..16 {
            acc[k] += w(i + k) * x[i + k];
        }
        i += 16;
    }
    let mut tail = 0f32;
    for k in full..n {
        tail += w(k) * x[k];
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
pub fn f32_dot(w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..x.len() * 4];
    dot_with(x.len(), x, |i| {
        f32::from_le_bytes([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]])
    })
}

#[inline(always)]
pub fn f16_dot(w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..x.len() * 2];
    dot_with(x.len(), x, |i| {
        half::f16::from_bits(u16::from_le_bytes([w[2 * i], w[2 * i + 1]])).to_f32()
    })
}

#[inline(always)]
pub fn bf16_dot(w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..x.len() * 2];
    dot_with(x.len(), x, |i| {
        f32::from_bits((u16::from_le_bytes([w[2 * i], w[2 * i + 1]]) as u32) << 16)
    })
}

/// Plain f32 dot of two slices of equal length.
#[inline(always)]
pub fn dot(a: &[f32], x: &[f32]) -> f32 {
    let a = &a[..x.len()];
    dot_with(x.len(), x, |i| a[i])
}
