//! What calibration learned about one linear product's input, in the form the methods use:
//! `Σx²` per input column (the importance matrix), `Σ|x|` per column (AWQ's activation scale) and
//! the Hessian `XᵀX` (GPTQ's and AWQ's output-error metric). Accumulated in f64 by the
//! calibration layer; statistics of linears sharing an input are one value, shared.

/// Input statistics of a linear product over the calibration tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct InputStats {
    /// Input columns.
    pub cols: usize,
    /// Tokens seen.
    pub tokens: u64,
    /// `Σ x²` per column.
    pub sum_sq: Vec<f64>,
    /// `Σ |x|` per column (empty when not collected).
    pub sum_abs: Vec<f64>,
    /// `max |x|` per column (SmoothQuant's activation range; empty when not collected).
    pub max_abs: Vec<f64>,
    /// `XᵀX`, row-major `cols × cols` (None when not collected).
    pub hessian: Option<Vec<f64>>,
}

impl InputStats {
    /// Statistics with only the importance (e.g. read from an imatrix file: `sum_sq = mean x²`
    /// per column over `tokens`).
    pub fn from_importance(importance: &[f32], tokens: u64) -> InputStats {
        InputStats {
            cols: importance.len(),
            tokens,
            sum_sq: importance.iter().map(|&v| v as f64 * tokens as f64).collect(),
            sum_abs: Vec::new(),
            max_abs: Vec::new(),
            hessian: None,
        }
    }

    /// Mean `x²` per column: the importance llama.cpp's quantizers weight by.
    pub fn importance(&self) -> Vec<f32> {
        let n = self.tokens.max(1) as f64;
        self.sum_sq.iter().map(|&v| (v / n) as f32).collect()
    }

    /// Mean `|x|` per column (AWQ's activation magnitude); None when not collected.
    pub fn mean_abs(&self) -> Option<Vec<f64>> {
        if self.sum_abs.len() != self.cols {
            return None;
        }
        let n = self.tokens.max(1) as f64;
        Some(self.sum_abs.iter().map(|&v| v / n).collect())
    }

    /// The statistics of `x / s` (input column `j` divided by `s[j]`): what a linear sees after
    /// a per-channel scale has been folded into the op before it.
    pub fn scaled(&self, s: &[f64]) -> InputStats {
        let n = self.cols;
        InputStats {
            cols: n,
            tokens: self.tokens,
            sum_sq: self.sum_sq.iter().zip(s).map(|(v, s)| v / (s * s)).collect(),
            sum_abs: if self.sum_abs.len() == n {
                self.sum_abs.iter().zip(s).map(|(v, s)| v / s).collect()
            } else {
                Vec::new()
            },
            max_abs: if self.max_abs.len() == n {
                self.max_abs.iter().zip(s).map(|(v, s)| v / s).collect()
            } else {
                Vec::new()
            },
            hessian: self.hessian.as_ref().map(|h| {
                let mut o = h.clone();
                for i in 0..n {
                    for j in 0..n {
                        o[i * n + j] /= s[i] * s[j];
                    }
                }
                o
            }),
        }
    }

    /// The first column or value that is not finite, for an error naming the tensor.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.sum_sq
            .iter()
            .chain(&self.sum_abs)
            .chain(self.hessian.iter().flatten())
            .position(|v| !v.is_finite())
    }
}
