//! Picking the next token from logits: greedy at temperature 0, otherwise temperature, top-k and
//! top-p (nucleus) filtering and a draw from a seeded generator, so runs are reproducible.

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub temperature: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    /// 1.0 keeps every token.
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            seed: 0,
        }
    }
}

pub struct Sampler {
    cfg: SamplerConfig,
    state: u64,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let state = cfg.seed ^ 0x9E37_79B9_7F4A_7C15;
        Sampler {
            cfg,
            state,
            candidates: Vec::new(),
        }
    }

    /// Index of the largest logit (the lowest index on ties).
    pub fn argmax(logits: &[f32]) -> u32 {
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        best as u32
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature <= 0.0 || logits.len() <= 1 {
            return Self::argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().map(|(i, &v)| (i as u32, v)));
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1);
        if self.cfg.top_k > 0 && self.cfg.top_k < c.len() {
            c.select_nth_unstable_by(self.cfg.top_k - 1, by_logit);
            c.truncate(self.cfg.top_k);
        }
        c.sort_unstable_by(by_logit);
        let max = c[0].1;
        let inv_t = 1.0 / self.cfg.temperature;
        let mut sum = 0f64;
        for e in c.iter_mut() {
            e.1 = ((e.1 - max) * inv_t).exp();
            sum += e.1 as f64;
        }
        if self.cfg.top_p < 1.0 {
            let mut acc = 0f64;
            let mut keep = c.len();
            for (i, e) in c.iter().enumerate() {
                acc += e.1 as f64 / sum;
                if acc >= self.cfg.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
            sum = c.iter().map(|e| e.1 as f64).sum();
        }
        let u = self.next_f64();
        let c = &self.candidates;
        let mut r = u * sum;
        for e in c.iter() {
            r -= e.1 as f64;
            if r <= 0.0 {
                return e.0;
            }
        }
        c[c.len() - 1].0
    }

    /// splitmix64: small, fast and good enough for sampling.
    fn next_f64(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_at_zero_temperature() {
        let mut s = Sampler::new(SamplerConfig {
            temperature: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_seeds_reproduce() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 1,
            top_p: 1.0,
            seed: 3,
        });
        assert_eq!(s.sample(&logits), Sampler::argmax(&logits));
        let cfg = SamplerConfig {
            temperature: 0.8,
            top_k: 0,
            top_p: 0.9,
            seed: 7,
        };
        let (mut a, mut b) = (Sampler::new(cfg.clone()), Sampler::new(cfg));
        let xs: Vec<u32> = (0..20).map(|_| a.sample(&logits)).collect();
        let ys: Vec<u32> = (0..20).map(|_| b.sample(&logits)).collect();
        assert_eq!(xs, ys);
        assert!(
            xs.iter().any(|&t| t != xs[0]),
            "sampling at temperature 0.8 should vary"
        );
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // One token holds almost all the mass: top-p 0.5 must always pick it.
        let mut logits = vec![0f32; 50];
        logits[7] = 20.0;
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            seed: 1,
        });
        assert!((0..50).all(|_| s.sample(&logits) == 7));
    }
}
