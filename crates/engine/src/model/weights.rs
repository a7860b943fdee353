//! Tensors of a model, borrowed from the GGUF map. Matrices stay in their stored block type;
//! only 1-D vectors (norms, biases) are copied out as f32 because every op reads them whole.
//! Any matrix or norm can be replaced by an owned one ([`Model::set_linear`](super::Model)):
//! that is how a calibration run swaps in a layer it has just quantized and runs it again.

use super::config::{Arch, Config};
use super::error::{ModelError, Result};
use crate::tensor::Matrix;
use lowbit_files::GgufFile;
use lowbit_formats::block_format;

/// The seven linear products of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinearId {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

/// Where a linear product's input comes from; the linears of one site see the same rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputSite {
    /// The normed residual stream entering attention: Q, K, V.
    AttnIn,
    /// The attention heads' output: O.
    AttnOut,
    /// The normed residual stream entering the MLP: gate, up.
    FfnIn,
    /// The gated activation: down.
    FfnOut,
    /// The final normed hidden state: the LM head.
    Head,
}

/// The norms whose weights a method may rescale (AWQ folds its input scales into them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormId {
    /// Before attention (`attn_norm`): scales Q, K and V's inputs.
    Attn,
    /// Before the MLP (`ffn_norm`): scales gate and up's inputs.
    Ffn,
}

impl NormId {
    pub fn tensor_name(self, il: usize) -> String {
        match self {
            NormId::Attn => format!("blk.{il}.attn_norm.weight"),
            NormId::Ffn => format!("blk.{il}.ffn_norm.weight"),
        }
    }
}

impl LinearId {
    pub const ALL: [LinearId; 7] = [
        LinearId::Q,
        LinearId::K,
        LinearId::V,
        LinearId::O,
        LinearId::Gate,
        LinearId::Up,
        LinearId::Down,
    ];

    /// The GGUF tensor name in layer `il`.
    pub fn tensor_name(self, il: usize) -> String {
        let s = match self {
            LinearId::Q => "attn_q",
            LinearId::K => "attn_k",
            LinearId::V => "attn_v",
            LinearId::O => "attn_output",
            LinearId::Gate => "ffn_gate",
            LinearId::Up => "ffn_up",
            LinearId::Down => "ffn_down",
        };
        format!("blk.{il}.{s}.weight")
    }

    /// The inverse of [`LinearId::tensor_name`]: `blk.3.ffn_up.weight` → (3, Up).
    pub fn parse_tensor_name(name: &str) -> Option<(usize, LinearId)> {
        let rest = name.strip_prefix("blk.")?;
        let (il, rest) = rest.split_once('.')?;
        let il: usize = il.parse().ok()?;
        LinearId::ALL.into_iter().find(|id| id.tensor_name(il) == name).map(|id| (il, id)).filter(|_| !rest.is_empty())
    }

    pub fn site(self) -> InputSite {
        match self {
            LinearId::Q | LinearId::K | LinearId::V => InputSite::AttnIn,
            LinearId::O => InputSite::AttnOut,
            LinearId::Gate | LinearId::Up => InputSite::FfnIn,
            LinearId::Down => InputSite::FfnOut,
        }
    }
}

impl InputSite {
    /// The linears fed by this site (none for the head, which is not a layer's).
    pub fn linears(self) -> &'static [LinearId] {
        match self {
            InputSite::AttnIn => &[LinearId::Q, LinearId::K, LinearId::V],
            InputSite::AttnOut => &[LinearId::O],
            InputSite::FfnIn => &[LinearId::Gate, LinearId::Up],
            InputSite::FfnOut => &[LinearId::Down],
            InputSite::Head => &[],
        }
    }
}

pub struct LayerWeights<'a> {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix<'a>,
    pub wk: Matrix<'a>,
    pub wv: Matrix<'a>,
    pub wo: Matrix<'a>,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub ffn_gate: Matrix<'a>,
    pub ffn_up: Matrix<'a>,
    pub ffn_down: Matrix<'a>,
    pub post_ffn_norm: Option<Vec<f32>>,
    /// Int8 forms of linears, for integer W8A8 products (see `model::input_quant`).
    pub(crate) int8: std::collections::BTreeMap<LinearId, crate::kernels::int8::Int8Matrix>,
}

pub struct Weights<'a> {
    /// `n_vocab` rows of `n_embd`.
    pub token_embd: Matrix<'a>,
    pub output_norm: Vec<f32>,
    /// The LM head; None when the file has no `output.weight` and the embedding matrix serves
    /// (tied embeddings) — see [`Weights::output`].
    pub output: Option<Matrix<'a>>,
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
    fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<Matrix<'a>> {
        self.check(name, &[cols as u64, rows as u64])?;
        let t = self.f.tensor(name).expect("checked above");
        if block_format(t.ty).is_none() {
            return Err(ModelError::WrongType {
                name: name.into(),
                ty: t.ty,
            });
        }
        Matrix::new(t.ty, rows, cols, self.f.tensor_data(t).into()).ok_or(ModelError::WrongType {
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

impl<'a> LayerWeights<'a> {
    pub fn linear(&self, id: LinearId) -> &Matrix<'a> {
        match id {
            LinearId::Q => &self.wq,
            LinearId::K => &self.wk,
            LinearId::V => &self.wv,
            LinearId::O => &self.wo,
            LinearId::Gate => &self.ffn_gate,
            LinearId::Up => &self.ffn_up,
            LinearId::Down => &self.ffn_down,
        }
    }

    pub fn norm(&self, id: NormId) -> &[f32] {
        match id {
            NormId::Attn => &self.attn_norm,
            NormId::Ffn => &self.ffn_norm,
        }
    }

    pub(crate) fn norm_mut(&mut self, id: NormId) -> &mut Vec<f32> {
        match id {
            NormId::Attn => &mut self.attn_norm,
            NormId::Ffn => &mut self.ffn_norm,
        }
    }

    pub(crate) fn linear_mut(&mut self, id: LinearId) -> &mut Matrix<'a> {
        match id {
            LinearId::Q => &mut self.wq,
            LinearId::K => &mut self.wk,
            LinearId::V => &mut self.wv,
            LinearId::O => &mut self.wo,
            LinearId::Gate => &mut self.ffn_gate,
            LinearId::Up => &mut self.ffn_up,
            LinearId::Down => &mut self.ffn_down,
        }
    }
}

impl<'a> Weights<'a> {
    /// The LM head: `output.weight`, or the token embedding when they are tied.
    pub fn output(&self) -> &Matrix<'a> {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

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
            Some(_) => Some(l.matrix("output.weight", c.n_embd, n_vocab)?),
            None => None,
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
                int8: Default::default(),
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
