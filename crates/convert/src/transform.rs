//! Value transforms between HF and GGUF tensor layouts.
//!
//! Both transforms are exact for real checkpoints: the permutation only moves rows, and the Gemma
//! norm shift adds/subtracts 1.0 in f32, which round-trips every bf16 weight with
//! 2^-16 <= |w| < 2^16 (and 0), i.e. every realistic norm weight.

use crate::error::{ConvertError, Result};

/// What is done to an HF tensor on its way into GGUF. [`Transform::invert`] undoes it on export.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    Identity,
    /// Rows are grouped into `n_head` heads of `head_dim` rows; within each head HF stores
    /// rotate-half order (first halves of all pairs, then second halves), llama.cpp's "normal"
    /// RoPE wants the two members of each pair adjacent. Used for LLaMA's Q (n_head) and K
    /// (n_head_kv) weights and biases.
    RopeInterleave {
        n_head: usize,
    },
    /// Adds a constant to every element (Gemma's RMSNorm stores `w` for a `1 + w` scale).
    Add(f32),
}

impl Transform {
    /// HF → GGUF, in place. `rows` is the outermost HF dimension; the data is `rows` contiguous
    /// rows of `data.len() / rows` elements.
    pub fn apply(&self, name: &str, data: &mut [f32], rows: usize) -> Result<()> {
        match *self {
            Transform::Identity => Ok(()),
            Transform::RopeInterleave { n_head } => permute_heads(name, data, rows, n_head, true),
            Transform::Add(c) => {
                data.iter_mut().for_each(|x| *x += c);
                Ok(())
            }
        }
    }

    /// GGUF → HF, in place: the exact inverse of [`Transform::apply`].
    pub fn invert(&self, name: &str, data: &mut [f32], rows: usize) -> Result<()> {
        match *self {
            Transform::Identity => Ok(()),
            Transform::RopeInterleave { n_head } => permute_heads(name, data, rows, n_head, false),
            Transform::Add(c) => {
                data.iter_mut().for_each(|x| *x -= c);
                Ok(())
            }
        }
    }
}

/// Reorders rows within each head. With `half = head_dim / 2`, HF row `j * half + i` (j ∈ {0,1})
/// becomes GGUF row `2 * i + j` when `to_interleaved`, and the reverse otherwise.
fn permute_heads(
    name: &str,
    data: &mut [f32],
    rows: usize,
    n_head: usize,
    to_interleaved: bool,
) -> Result<()> {
    let bad = |reason: String| ConvertError::BadTensor {
        name: name.to_string(),
        reason,
    };
    if n_head == 0 || rows == 0 || rows % (2 * n_head) != 0 {
        return Err(bad(format!(
            "{rows} rows cannot be split into {n_head} heads of even size"
        )));
    }
    if data.len() % rows != 0 {
        return Err(bad(format!(
            "{} elements are not {rows} whole rows",
            data.len()
        )));
    }
    let row_len = data.len() / rows;
    let head_dim = rows / n_head;
    let half = head_dim / 2;
    let head_elems = head_dim * row_len;
    let mut scratch = vec![0f32; head_elems];
    for head in data.chunks_exact_mut(head_elems) {
        scratch.copy_from_slice(head);
        for i in 0..half {
            for j in 0..2 {
                let hf_row = j * half + i;
                let gguf_row = 2 * i + j;
                let (dst, src) = if to_interleaved {
                    (gguf_row, hf_row)
                } else {
                    (hf_row, gguf_row)
                };
                head[dst * row_len..(dst + 1) * row_len]
                    .copy_from_slice(&scratch[src * row_len..(src + 1) * row_len]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_matches_reference_layout() {
        // 2 heads, head_dim 4, row_len 1: HF rows [a0 a1 b0 b1] per head (a = first halves).
        let mut d: Vec<f32> = (0..8).map(|x| x as f32).collect();
        Transform::RopeInterleave { n_head: 2 }
            .apply("t", &mut d, 8)
            .unwrap();
        // reshape(2, 2, 2).swapaxes(1, 2): head0 [0 2 1 3], head1 [4 6 5 7]
        assert_eq!(d, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
    }

    #[test]
    fn interleave_inverts_exactly() {
        let rows = 24;
        let cols = 5;
        let orig: Vec<f32> = (0..rows * cols).map(|x| (x as f32).sin()).collect();
        for n_head in [1, 2, 3, 6] {
            let t = Transform::RopeInterleave { n_head };
            let mut d = orig.clone();
            t.apply("t", &mut d, rows).unwrap();
            assert_ne!(d, orig);
            t.invert("t", &mut d, rows).unwrap();
            assert_eq!(d, orig);
        }
        let mut bad = orig.clone();
        assert!(Transform::RopeInterleave { n_head: 5 }
            .apply("t", &mut bad, rows)
            .is_err());
    }

    #[test]
    fn norm_shift_round_trips_bf16_weights() {
        // HF checkpoints hold bf16 norm weights; for those, w + 1 - 1 == w exactly in f32
        // (the sum needs at most 8 + 16 significant bits for 2^-16 <= |w| < 2^16).
        let orig: Vec<f32> = (0..1000)
            .map(|x| half::bf16::from_f32(((x as f32) * 0.37).sin() * 3.0).to_f32())
            .collect();
        let mut d = orig.clone();
        Transform::Add(1.0).apply("n", &mut d, 1).unwrap();
        assert_eq!(d[1], orig[1] + 1.0);
        Transform::Add(1.0).invert("n", &mut d, 1).unwrap();
        assert_eq!(d, orig);
    }
}
