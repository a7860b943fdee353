//! Shared by the round-to-nearest test binaries: the types under test and a deterministic
//! generator (the same LCG in every binary, so failures reproduce).
#![allow(dead_code)]

use lowbit_formats::GgmlType;

/// Every type lowbit quantizes with the round-to-nearest scale search.
pub const TYPES: [GgmlType; 14] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
];

pub struct Rng(pub u64);

impl Rng {
    /// Uniform in (0, 1).
    pub fn u(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f32 {
        let (u, v) = (self.u(), self.u());
        (-2.0 * u.ln()).sqrt() * (6.283_185 * v).cos()
    }

    /// Heavy-tailed values in roughly ±5, like weights with outliers.
    pub fn heavy(&mut self) -> f32 {
        let g = 2.0 * self.u() - 1.0;
        g / (1.05 - g.abs()).sqrt()
    }
}
