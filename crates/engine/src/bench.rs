//! Throughput measurements the way llama-bench takes them, so the two tools' figures compare:
//! prompt processing (`pp`: one batch of `n` tokens into an empty cache, logits of the last only)
//! and generation (`tg`: `n` single-token steps from an empty cache). Tokens are random ids —
//! throughput does not depend on which tokens they are. Also the two numbers a generation speed
//! means something against: the bytes of weights one token has to read, and the machine's memory
//! read bandwidth measured in the same process.

use crate::model::{LinearId, Model, Result};
use rayon::prelude::*;
use std::time::Instant;

/// Seconds taken by one prompt-processing run of `n` tokens.
pub fn time_prompt(model: &Model, n: usize, seed: u64) -> Result<f64> {
    let tokens = random_tokens(model.n_vocab(), n, seed);
    let mut cache = model.new_cache(n);
    let t = Instant::now();
    model.forward(&tokens, &mut cache, n.saturating_sub(1))?;
    Ok(t.elapsed().as_secs_f64())
}

/// Seconds taken by `n` generation steps of one token each, starting from an empty cache.
pub fn time_generation(model: &Model, n: usize, seed: u64) -> Result<f64> {
    let tokens = random_tokens(model.n_vocab(), n, seed);
    let mut cache = model.new_cache(n);
    let t = Instant::now();
    for tok in &tokens {
        model.forward(std::slice::from_ref(tok), &mut cache, 0)?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Bytes of weight matrices one generated token reads: every layer matrix (its int8 form where
/// it has one) and the LM head (the embedding table contributes one row, which is negligible and
/// left out).
pub fn weight_bytes_per_token(model: &Model) -> u64 {
    let w = &model.weights;
    let layers: usize = w
        .layers
        .iter()
        .map(|l| {
            LinearId::ALL
                .iter()
                .map(|&id| l.int8.get(&id).map_or(l.linear(id).data.len(), |m| m.bytes()))
                .sum::<usize>()
        })
        .sum();
    (layers + w.output().data.len()) as u64
}

/// Memory read bandwidth in bytes per second with the current rayon pool: the median of `reps`
/// parallel sums over a buffer far larger than any cache (the median, because on a shared VM
/// single passes swing by ±30%). This is the ceiling generation runs
/// against, since every token streams all weights from memory once.
pub fn read_bandwidth(buffer_bytes: usize, reps: usize) -> f64 {
    let n = buffer_bytes / 8;
    // Non-zero contents so the pages are really backed (a zeroed allocation can map one page).
    let buf: Vec<u64> = (0..n as u64).collect();
    let chunk = 1 << 16;
    let mut rates = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let s: u64 = buf
            .par_chunks(chunk)
            .map(sum_words)
            .reduce(|| 0, u64::wrapping_add);
        let dt = t.elapsed().as_secs_f64();
        std::hint::black_box(s);
        rates.push((n * 8) as f64 / dt);
    }
    Summary::of(&rates).map_or(0.0, |s| s.median)
}

/// Wrapping sum of a slice with eight independent lanes, in an AVX2 copy where the CPU has it:
/// the loads must run as wide and as far ahead as the kernels' do, or the probe under-reports.
fn sum_words(c: &[u64]) -> u64 {
    #[inline(always)]
    fn body(c: &[u64]) -> u64 {
        let mut acc = [0u64; 8];
        let mut it = c.chunks_exact(8);
        for q in &mut it {
            for i in 0..8 {
                acc[i] = acc[i].wrapping_add(q[i]);
            }
        }
        let tail = it.remainder().iter().fold(0u64, |a, &b| a.wrapping_add(b));
        acc.iter().fold(tail, |a, &b| a.wrapping_add(b))
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::cpu::detected() >= crate::kernels::cpu::Level::Avx2 {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(c: &[u64]) -> u64 {
            body(c)
        }
        // SAFETY: the CPU has AVX2 (checked above).
        return unsafe { wide(c) };
    }
    body(c)
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`); `None` elsewhere.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak that [`peak_rss`] reports, so each model of a run gets its own figure.
/// Returns false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Median, minimum, maximum, mean and sample standard deviation of some measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
}

impl Summary {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            mean,
            stdev: var.sqrt(),
        })
    }
}

/// A fixed pseudo-random sequence of token ids (splitmix64), so runs are repeatable.
fn random_tokens(n_vocab: usize, n: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z % n_vocab.max(1) as u64) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_statistics() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!((s.min, s.max, s.mean), (1.0, 10.0, 4.0));
        assert!((s.stdev - (50.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Summary::of(&[5.0]).unwrap().stdev, 0.0);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn random_tokens_stay_in_vocabulary_and_repeat() {
        let a = random_tokens(1000, 500, 7);
        assert!(a.iter().all(|&t| t < 1000));
        assert_eq!(a, random_tokens(1000, 500, 7));
        assert_ne!(a, random_tokens(1000, 500, 8));
    }

    #[test]
    fn bandwidth_is_positive() {
        assert!(read_bandwidth(1 << 20, 2) > 0.0);
    }
}
