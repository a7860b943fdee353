//! Tensors of a model, borrowed from the GGUF map. Matrices stay in their stored block type;
//! only 1-D vectors (norms, biases) are copied out as f32 because every op reads them whole.

use super::config::{Arch, Config};
use super::error::{ModelError, Result};
use crate::tensor::QMatrix;
use lowbit_files::GgufFile;
use lowbit_formats::block_format;

pub struct LayerWeights<'a> {
    pub attn_norm: Vec<f32>,
    pub wq: QMatrix<'a>,
    pub wk: QMatrix<'a>,
    pub wv: QMatrix<'a>,
    pub wo: QMatrix<'a>,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub ffn_gate: QMatrix<'a>,
    pub ffn_up: QMatrix<'a>,
    pub ffn_down: QMatrix<'a>,
    pub post_ffn_norm: Option<Vec<f32>>,
}

pub struct Weights<'a> {
    /// `n_vocab` rows of `n_embd`.
    pub token_embd: QMatrix<'a>,
    pub output_norm: Vec<f32>,
    /// The LM head; the embedding matrix itself when the file has no `output.weight`.
    pub output: QMatrix<'a>,
    pub layers: Vec<LayerWeights<'a>>,
    pub n_vocab: usize,
    pub n_ff: usize,
}

struct Loader<'a> {
    f: &'a GgufFile,
}

impl<'a> Loader<'a> {
    fn dims(&self, name: &str) -> Result<Vec<u64>> {
        let t = self
            .f
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_owned()))?;
        Ok(t.dims.clone())
    }

    fn check(&self, name: &str, expected: &[u64]) -> Result<()> {
        let found = self.dims(name)?;
        if found != expected {
            return Err(ModelError::WrongShape {
                name: name.into(),
                expected: expected.to_vec(),
                found,
            });
        }
        Ok(())
    }

    /// A matrix of `rows` outputs by `cols` inputs (GGUF dims `[cols, rows]`).
    fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<QMatrix<'a>> {
        self.check(name, &[cols as u64, rows as u64])?;
        let t = self.f.tensor(name).expect("checked above");
        if block_format(t.ty).is_none() {
            return Err(ModelError::WrongType {
                name: name.into(),
                ty: t.ty,
            });
        }
        QMatrix::new(t.ty, rows, cols, self.f.tensor_data(t)).ok_or(ModelError::WrongType {
            name: name.into(),
            ty: t.ty,
        })
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        self.check(name, &[len as u64])?;
        let t = self.f.tensor(name).expect("checked above");
        let fmt = block_format(t.ty).ok_or(ModelError::WrongType {
            name: name.into(),
            ty: t.ty,
        })?;
        let mut out = vec![0f32; len];
        fmt.dequantize_row(self.f.tensor_data(t), &mut out)
            .map_err(|_| ModelError::WrongType {
                name: name.into(),
                ty: t.ty,
            })?;
        Ok(out)
    }

    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        match self.f.tensor(name) {
            None => Ok(None),
            Some(_) => self.vector(name, len).map(Some),
        }
    }
}

impl<'a> Weights<'a> {
    pub fn load(f: &'a GgufFile, c: &Config) -> Result<Weights<'a>> {
        let l = Loader { f };
        let embd = l.dims("token_embd.weight")?;
        if embd.len() != 2 || embd[0] != c.n_embd as u64 {
            return Err(ModelError::WrongShape {
                name: "token_embd.weight".into(),
                expected: vec![c.n_embd as u64, embd.get(1).copied().unwrap_or(0)],
                found: embd,
            });
        }
        let n_vocab = embd[1] as usize;
        let token_embd = l.matrix("token_embd.weight", c.n_embd, n_vocab)?;
        let output = match f.tensor("output.weight") {
            Some(_) => l.matrix("output.weight", c.n_embd, n_vocab)?,
            None => token_embd,
        };
        let n_ff = match l.dims("blk.0.ffn_up.weight")?.as_slice() {
            [_, n] => *n as usize,
            other => {
                return Err(ModelError::WrongShape {
                    name: "blk.0.ffn_up.weight".into(),
                    expected: vec![c.n_embd as u64, 0],
                    found: other.to_vec(),
                })
            }
        };
        let q_dim = c.n_head * c.head_dim_k;
        let k_dim = c.n_head_kv * c.head_dim_k;
        let v_dim = c.n_head_kv * c.head_dim_v;
        let o_in = c.n_head * c.head_dim_v;
        let gemma = c.arch == Arch::Gemma3;
        let qk_norm = matches!(c.arch, Arch::Gemma3 | Arch::Qwen3);
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let b = |s: &str| format!("blk.{i}.{s}.bias");
            let req_if = |cond: bool, name: String, len: usize| -> Result<Option<Vec<f32>>> {
                if cond {
                    l.vector(&name, len).map(Some)
                } else {
                    l.opt_vector(&name, len)
                }
            };
            layers.push(LayerWeights {
                attn_norm: l.vector(&n("attn_norm"), c.n_embd)?,
                wq: l.matrix(&n("attn_q"), c.n_embd, q_dim)?,
                wk: l.matrix(&n("attn_k"), c.n_embd, k_dim)?,
                wv: l.matrix(&n("attn_v"), c.n_embd, v_dim)?,
                wo: l.matrix(&n("attn_output"), o_in, c.n_embd)?,
                bq: req_if(c.arch == Arch::Qwen2, b("attn_q"), q_dim)?,
                bk: req_if(c.arch == Arch::Qwen2, b("attn_k"), k_dim)?,
                bv: req_if(c.arch == Arch::Qwen2, b("attn_v"), v_dim)?,
                q_norm: req_if(qk_norm, n("attn_q_norm"), c.head_dim_k)?,
                k_norm: req_if(qk_norm, n("attn_k_norm"), c.head_dim_k)?,
                post_attn_norm: req_if(gemma, n("post_attention_norm"), c.n_embd)?,
                ffn_norm: l.vector(&n("ffn_norm"), c.n_embd)?,
                ffn_gate: l.matrix(&n("ffn_gate"), c.n_embd, n_ff)?,
                ffn_up: l.matrix(&n("ffn_up"), c.n_embd, n_ff)?,
                ffn_down: l.matrix(&n("ffn_down"), n_ff, c.n_embd)?,
                post_ffn_norm: req_if(gemma, n("post_ffw_norm"), c.n_embd)?,
            });
        }
        Ok(Weights {
            token_embd,
            output_norm: l.vector("output_norm.weight", c.n_embd)?,
            output,
            layers,
            n_vocab,
            n_ff,
        })
    }
}
