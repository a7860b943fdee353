//! Mixed precision under a size budget: one type per tensor, chosen from a sensitivity table
//! (each tensor's bytes and predicted loss at each candidate type) to minimise the predicted
//! loss of the whole model — the sum of the tensors' losses — within the budget.
//!
//! A multiple-choice knapsack, solved exactly by dynamic programming over the budget in units of
//! `budget / 20000` bytes (each option's bytes rounded *up* to whole units, so the result always
//! fits), then a greedy pass spends the bytes the rounding left over on the upgrades with the
//! best loss saved per byte. With ~200 tensors and up to 12 types that is ~50 M steps. Pure
//! arithmetic on the table: the measuring is `lowbit-calib`'s.

use lowbit_formats::GgmlType;
use serde::{Deserialize, Serialize};

/// One way to store a tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeCost {
    /// GGUF type name.
    pub ty: String,
    /// Bytes in the file, padded to the alignment.
    pub bytes: u64,
    /// Predicted loss (KLD on the calibration slice) of quantizing this tensor alone to it.
    pub loss: f64,
    /// The proxy it was predicted from (the Hessian-weighted output error).
    pub proxy: f64,
}

/// The options of one tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorCosts {
    pub name: String,
    pub dims: Vec<u64>,
    pub options: Vec<TypeCost>,
}

/// The type given to one tensor and why.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub name: String,
    pub ty: String,
    pub bytes: u64,
    pub loss: f64,
    /// Predicted loss saved per MiB by the next larger option (what this tensor would buy with
    /// more bytes), and lost per MiB by the next smaller one.
    pub up_gain_per_mib: Option<f64>,
    pub down_cost_per_mib: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Allocation {
    pub choices: Vec<Choice>,
    /// Bytes of the allocated tensors.
    pub bytes: u64,
    pub predicted_loss: f64,
}

impl Allocation {
    /// The chosen type of `name`.
    pub fn type_of(&self, name: &str) -> Option<GgmlType> {
        self.choices
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| GgmlType::from_name(&c.ty))
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AllocError {
    #[error("{budget} bytes is below the smallest file these types make ({min} bytes)")]
    TooSmall { budget: u64, min: u64 },
    #[error("tensor {0} has no candidate type")]
    NoOptions(String),
}

/// Options that are not dominated (more bytes must mean less loss), by increasing bytes.
fn frontier(options: &[TypeCost]) -> Vec<TypeCost> {
    let mut o = options.to_vec();
    o.sort_by(|a, b| a.bytes.cmp(&b.bytes).then(a.loss.total_cmp(&b.loss)));
    let mut out: Vec<TypeCost> = Vec::new();
    for c in o {
        if out.last().is_none_or(|l| c.loss < l.loss) {
            out.push(c);
        }
    }
    out
}

/// Allocates `budget` bytes over `tensors`.
pub fn allocate(tensors: &[TensorCosts], budget: u64) -> Result<Allocation, AllocError> {
    let fronts: Vec<Vec<TypeCost>> = tensors
        .iter()
        .map(|t| {
            let f = frontier(&t.options);
            if f.is_empty() {
                Err(AllocError::NoOptions(t.name.clone()))
            } else {
                Ok(f)
            }
        })
        .collect::<Result<_, _>>()?;
    let min: u64 = fronts.iter().map(|f| f[0].bytes).sum();
    if budget < min {
        return Err(AllocError::TooSmall { budget, min });
    }
    // dp[c] = least loss of the tensors so far in exactly c units; back[t][c] = the option.
    let units = (budget / 20_000).max(1);
    let cap = (budget / units) as usize;
    let cost = |b: u64| b.div_ceil(units) as usize;
    let mut dp = vec![f64::INFINITY; cap + 1];
    dp[0] = 0.0;
    let mut back: Vec<Vec<u8>> = Vec::with_capacity(fronts.len());
    for f in &fronts {
        let mut next = vec![f64::INFINITY; cap + 1];
        let mut arg = vec![u8::MAX; cap + 1];
        for (c, &d) in dp.iter().enumerate() {
            if !d.is_finite() {
                continue;
            }
            for (k, o) in f.iter().enumerate() {
                let c2 = c + cost(o.bytes);
                if c2 <= cap && d + o.loss < next[c2] {
                    next[c2] = d + o.loss;
                    arg[c2] = k as u8;
                }
            }
        }
        dp = next;
        back.push(arg);
    }
    let (mut c, _) = dp
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .ok_or(AllocError::TooSmall { budget, min })?;
    let mut sel = vec![0usize; fronts.len()];
    for t in (0..fronts.len()).rev() {
        let k = back[t][c] as usize;
        sel[t] = k;
        c -= cost(fronts[t][k].bytes);
    }
    let bytes_of = |sel: &[usize]| -> u64 { sel.iter().zip(&fronts).map(|(&i, f)| f[i].bytes).sum() };
    // Spend what is left on the best loss saved per byte.
    let mut used = bytes_of(&sel);
    loop {
        let best = (0..fronts.len())
            .filter(|&t| sel[t] + 1 < fronts[t].len())
            .filter_map(|t| {
                let (a, b) = (&fronts[t][sel[t]], &fronts[t][sel[t] + 1]);
                let extra = b.bytes - a.bytes;
                (used + extra <= budget).then(|| (t, (a.loss - b.loss) / extra.max(1) as f64))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((t, _)) => {
                used += fronts[t][sel[t] + 1].bytes - fronts[t][sel[t]].bytes;
                sel[t] += 1;
            }
            None => break,
        }
    }
    let mib = (1u64 << 20) as f64;
    let choices: Vec<Choice> = tensors
        .iter()
        .zip(&fronts)
        .zip(&sel)
        .map(|((t, f), &i)| {
            let per_mib = |a: &TypeCost, b: &TypeCost| (a.loss - b.loss) / ((b.bytes - a.bytes).max(1) as f64 / mib);
            Choice {
                name: t.name.clone(),
                ty: f[i].ty.clone(),
                bytes: f[i].bytes,
                loss: f[i].loss,
                up_gain_per_mib: f.get(i + 1).map(|u| per_mib(&f[i], u)),
                down_cost_per_mib: i.checked_sub(1).map(|d| per_mib(&f[d], &f[i])),
            }
        })
        .collect();
    Ok(Allocation {
        bytes: used,
        predicted_loss: choices.iter().map(|c| c.loss).sum(),
        choices,
    })
}

/// The least bytes any allocation of these tensors takes (every tensor at its smallest type).
pub fn min_bytes(tensors: &[TensorCosts]) -> u64 {
    tensors
        .iter()
        .map(|t| t.options.iter().map(|o| o.bytes).min().unwrap_or(0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(ty: &str, bytes: u64, loss: f64) -> TypeCost {
        TypeCost {
            ty: ty.into(),
            bytes,
            loss,
            proxy: loss,
        }
    }

    fn tensor(name: &str, options: Vec<TypeCost>) -> TensorCosts {
        TensorCosts {
            name: name.into(),
            dims: vec![1],
            options,
        }
    }

    /// Every combination, for checking the allocator against the exact optimum.
    fn brute(t: &[TensorCosts], budget: u64) -> f64 {
        let mut best = f64::INFINITY;
        let n: usize = t.iter().map(|x| x.options.len()).product();
        for mut k in 0..n {
            let (mut b, mut l) = (0, 0.0);
            for x in t {
                let o = &x.options[k % x.options.len()];
                k /= x.options.len();
                b += o.bytes;
                l += o.loss;
            }
            if b <= budget {
                best = best.min(l);
            }
        }
        best
    }

    #[test]
    fn never_exceeds_the_budget_and_is_near_the_exact_optimum() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        let mut worst = 0f64;
        for _ in 0..200 {
            let t: Vec<TensorCosts> = (0..5)
                .map(|i| {
                    let sens = 0.1 + rnd() * 3.0;
                    let size = 100 + (rnd() * 900.0) as u64;
                    let opts = [(2.6, "Q2_K"), (4.5, "Q4_0"), (5.5, "Q5_0"), (8.5, "Q8_0")]
                        .iter()
                        .map(|&(bpw, ty)| opt(ty, (size as f64 * bpw) as u64, sens * (-bpw).exp2() * (0.8 + 0.4 * rnd())))
                        .collect();
                    tensor(&format!("t{i}"), opts)
                })
                .collect();
            let min = min_bytes(&t);
            let max: u64 = t.iter().map(|x| x.options.iter().map(|o| o.bytes).max().unwrap()).sum();
            let budget = min + ((max - min) as f64 * rnd()) as u64;
            let a = allocate(&t, budget).unwrap();
            assert!(a.bytes <= budget, "{} > {budget}", a.bytes);
            assert_eq!(a.bytes, a.choices.iter().map(|c| c.bytes).sum::<u64>());
            let exact = brute(&t, budget);
            worst = worst.max(a.predicted_loss / exact - 1.0);
        }
        // Exact up to the byte units (budget / 20000): within a fraction of a percent.
        assert!(worst < 0.01, "worst excess over the optimum {worst}");
    }

    #[test]
    fn sensitive_tensors_get_more_bits() {
        let t = vec![
            tensor("robust", vec![opt("Q2_K", 100, 0.01), opt("Q8_0", 300, 0.0)]),
            tensor("sensitive", vec![opt("Q2_K", 100, 1.0), opt("Q8_0", 300, 0.0)]),
        ];
        let a = allocate(&t, 420).unwrap();
        assert_eq!(a.type_of("sensitive"), Some(GgmlType::Q8_0));
        assert_eq!(a.type_of("robust"), Some(GgmlType::Q2_K));
        assert!(a.choices[0].up_gain_per_mib.is_some());
    }

    #[test]
    fn a_budget_below_the_smallest_file_names_the_minimum() {
        let t = vec![tensor("a", vec![opt("Q4_0", 100, 1.0), opt("Q8_0", 200, 0.1)])];
        assert_eq!(
            allocate(&t, 99).unwrap_err(),
            AllocError::TooSmall { budget: 99, min: 100 }
        );
    }
}
