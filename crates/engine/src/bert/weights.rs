//! BERT weights from a Hugging Face folder: float matrices borrowed from the safetensors memory
//! map as they are, or quantized in memory to a GGUF block type at load time (to measure what a
//! quantized encoder loses without writing a file).

use super::config::BertConfig;
use super::error::{BertError, Result};
use super::ops::add_bias;
use crate::kernels::int8::{matmul_int8, Int8Matrix};
use crate::kernels::matmul;
use crate::model::SiteRows;
use crate::tensor::WeightQuantizer;
pub use crate::tensor::Matrix;
use lowbit_files::{Dtype, HfModel};
use lowbit_formats::GgmlType;
use std::borrow::Cow;

/// `y = x·Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct Linear<'a> {
    pub w: Matrix<'a>,
    pub b: Vec<f32>,
    /// The weights as int8 codes, when the load quantizer made them (W8A8): used whenever the
    /// input arrives as int8 activations.
    pub int8: Option<Int8Matrix>,
}

impl Linear<'_> {
    pub fn forward(&self, x: &[f32], n_tokens: usize, out: &mut [f32]) {
        matmul(&self.w.q(), x, n_tokens, out);
        add_bias(out, &self.b);
    }

    /// [`forward`](Self::forward) on a site's rows: int8 activations meet the int8 weights.
    pub(crate) fn forward_rows(&self, x: &SiteRows<'_>, n_tokens: usize, out: &mut [f32]) {
        match (x, &self.int8) {
            (SiteRows::Int8(a), Some(w)) => {
                matmul_int8(w, a, out);
                add_bias(out, &self.b);
            }
            (SiteRows::Float(x), _) => self.forward(x, n_tokens, out),
            (SiteRows::Int8(_), None) => unreachable!("int8 rows reach only linears with int8 weights"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct Layer<'a> {
    pub query: Linear<'a>,
    pub key: Linear<'a>,
    pub value: Linear<'a>,
    pub attn_out: Linear<'a>,
    pub attn_norm: Norm,
    pub up: Linear<'a>,
    pub down: Linear<'a>,
    pub out_norm: Norm,
}

#[derive(Clone)]
pub struct BertWeights<'a> {
    pub word: Matrix<'a>,
    pub position: Matrix<'a>,
    pub token_type: Matrix<'a>,
    pub emb_norm: Norm,
    pub layers: Vec<Layer<'a>>,
    /// Every matrix's name and stored type, in load order.
    pub types: Vec<(String, GgmlType)>,
    /// Rounds every layer linear's input (W8A8); None keeps activations float.
    pub input_quant: Option<std::sync::Arc<dyn crate::model::InputQuantizer>>,
}

impl BertWeights<'_> {
    /// Forgets every linear's int8 form, so W8A8 runs as fake quantization.
    pub fn drop_int8(&mut self) {
        for l in &mut self.layers {
            for lin in [&mut l.query, &mut l.key, &mut l.value, &mut l.attn_out, &mut l.up, &mut l.down] {
                lin.int8 = None;
            }
        }
    }

    /// Bytes of the 2-D weights as the products read them (what quantization shrinks): a
    /// linear's int8 form where it has one (its f32 copy is also kept, for fake quantization).
    pub fn matrix_bytes(&self) -> usize {
        let lin = |l: &Linear| l.int8.as_ref().map_or(l.w.data.len(), |m| m.bytes());
        self.word.data.len()
            + self.position.data.len()
            + self.token_type.data.len()
            + self
                .layers
                .iter()
                .map(|l| {
                    lin(&l.query)
                        + lin(&l.key)
                        + lin(&l.value)
                        + lin(&l.attn_out)
                        + lin(&l.up)
                        + lin(&l.down)
                })
                .sum::<usize>()
    }
}

struct Loader<'a> {
    hf: &'a HfModel,
    prefix: &'static str,
    quant: Option<&'a dyn WeightQuantizer>,
    types: Vec<(String, GgmlType)>,
}

impl<'a> Loader<'a> {
    fn name(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    fn matrix(&mut self, n: &str, rows: usize, cols: usize) -> Result<Matrix<'a>> {
        let name = self.name(n);
        let (file, info) = self
            .hf
            .tensor(&name)
            .ok_or_else(|| BertError::tensor(&name, "missing"))?;
        if info.shape != [rows as u64, cols as u64] {
            return Err(BertError::tensor(
                &name,
                format!("shape {:?}, expected [{rows}, {cols}]", info.shape),
            ));
        }
        let stored = match info.dtype {
            Dtype::F32 => GgmlType::F32,
            Dtype::F16 => GgmlType::F16,
            Dtype::BF16 => GgmlType::BF16,
            d => {
                return Err(BertError::tensor(
                    &name,
                    format!("dtype {} is not a float type", d.name()),
                ))
            }
        };
        let m = match self.quant {
            None => {
                let data = Cow::Borrowed(file.tensor_data(info));
                Matrix::new(stored, rows, cols, data)
                    .ok_or_else(|| BertError::tensor(&name, "byte size does not match its shape"))?
            }
            Some(q) => {
                let values = file.to_f32(info)?;
                let (ty, bytes) = q
                    .quantize(&name, &values, rows, cols)
                    .map_err(|msg| BertError::tensor(&name, msg))?;
                Matrix::owned(ty, rows, cols, bytes).ok_or_else(|| {
                    BertError::tensor(&name, "the quantizer returned blocks of the wrong size")
                })?
            }
        };
        self.types.push((name, m.ty));
        Ok(m)
    }

    fn vector(&self, n: &str, len: usize) -> Result<Vec<f32>> {
        let name = self.name(n);
        let v = self.hf.tensor_f32(&name)?;
        if v.len() != len {
            return Err(BertError::tensor(
                &name,
                format!("{} elements, expected {len}", v.len()),
            ));
        }
        Ok(v)
    }

    fn linear(&mut self, n: &str, rows: usize, cols: usize) -> Result<Linear<'a>> {
        let w = self.matrix(&format!("{n}.weight"), rows, cols)?;
        let name = self.name(&format!("{n}.weight"));
        let int8 = match self.quant.filter(|q| q.offers_int8()) {
            Some(q) => {
                let values = self.hf.tensor_f32(&name)?;
                match q.quantize_int8(&name, &values, rows, cols) {
                    None => None,
                    Some(r) => {
                        let (codes, scales) = r.map_err(|msg| BertError::tensor(&name, msg))?;
                        Some(Int8Matrix::new(rows, cols, &codes, &scales).ok_or_else(|| {
                            BertError::tensor(&name, "the quantizer returned int8 codes of the wrong size")
                        })?)
                    }
                }
            }
            None => None,
        };
        Ok(Linear { w, b: self.vector(&format!("{n}.bias"), rows)?, int8 })
    }

    fn norm(&self, n: &str, len: usize) -> Result<Norm> {
        Ok(Norm {
            gamma: self.vector(&format!("{n}.weight"), len)?,
            beta: self.vector(&format!("{n}.bias"), len)?,
        })
    }
}

impl<'a> BertWeights<'a> {
    /// Loads every encoder weight (the pooler head is not used by sentence embeddings). With
    /// `quant`, each 2-D weight — embeddings tables included — goes through that quantizer
    /// (which picks its type) instead of being used as stored.
    pub fn load(
        hf: &'a HfModel,
        cfg: &BertConfig,
        quant: Option<&'a dyn WeightQuantizer>,
    ) -> Result<BertWeights<'a>> {
        // BertModel checkpoints name tensors from the root; task-head checkpoints nest them in `bert.`.
        let prefix = if hf.tensor("embeddings.word_embeddings.weight").is_some() {
            ""
        } else {
            "bert."
        };
        let mut ld = Loader {
            hf,
            prefix,
            quant,
            types: Vec::new(),
        };
        let (h, i) = (cfg.hidden, cfg.intermediate);
        let word = ld.matrix("embeddings.word_embeddings.weight", cfg.vocab, h)?;
        let position = ld.matrix(
            "embeddings.position_embeddings.weight",
            cfg.max_positions,
            h,
        )?;
        let token_type = ld.matrix("embeddings.token_type_embeddings.weight", cfg.type_vocab, h)?;
        let emb_norm = ld.norm("embeddings.LayerNorm", h)?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                query: ld.linear(&format!("{p}.attention.self.query"), h, h)?,
                key: ld.linear(&format!("{p}.attention.self.key"), h, h)?,
                value: ld.linear(&format!("{p}.attention.self.value"), h, h)?,
                attn_out: ld.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: ld.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                up: ld.linear(&format!("{p}.intermediate.dense"), i, h)?,
                down: ld.linear(&format!("{p}.output.dense"), h, i)?,
                out_norm: ld.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(BertWeights {
            word,
            position,
            token_type,
            emb_norm,
            layers,
            types: ld.types,
            input_quant: None,
        })
    }
}
