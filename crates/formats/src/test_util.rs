//! Shared test helpers.

/// Deterministic pseudo-random data without a dev-dependency: a 64-bit LCG whose top 24 bits
/// give exactly representable f32s (mirrored by scripts/gen_golden.py).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u32() >> 8) as f32 / (1u32 << 23) as f32) - 1.0
    }
    /// Heavy-tailed: uniform cubed times a magnitude, like real weights with outliers.
    pub fn weight(&mut self) -> f32 {
        let u = self.uniform();
        u * u * u + 0.25 * self.uniform()
    }
}

pub fn sse(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}
