//! BERT weights from a Hugging Face folder: float matrices borrowed from the safetensors memory
//! map as they are, or quantized in memory to a GGUF block type at load time (to measure what a
//! quantized encoder loses without writing a file).

use super::config::BertConfig;
use super::error::{BertError, Result};
use super::ops::add_bias;
use crate::kernels::matmul;
use crate::tensor::QMatrix;
use lowbit_files::{Dtype, HfModel};
use lowbit_formats::fallback::fit_row;
use lowbit_formats::{block_format, GgmlType};
use rayon::prelude::*;
use std::borrow::Cow;

/// A weight matrix in any block type, borrowed or owned.
#[derive(Clone, Debug)]
pub struct Matrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: Cow<'a, [u8]>,
}

impl<'a> Matrix<'a> {
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: Cow<'a, [u8]>) -> Option<Matrix<'a>> {
        QMatrix::new(ty, rows, cols, &data)?;
        Some(Matrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    pub fn q(&self) -> QMatrix<'_> {
        QMatrix {
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
            data: &self.data,
        }
    }

    /// Dequantizes row `r` (an embedding lookup).
    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let fmt = block_format(self.ty).expect("type checked at load");
        fmt.dequantize_row(self.q().row(r), out)
            .expect("geometry checked at load");
    }
}

/// `y = x·Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct Linear<'a> {
    pub w: Matrix<'a>,
    pub b: Vec<f32>,
}

impl Linear<'_> {
    pub fn forward(&self, x: &[f32], n_tokens: usize, out: &mut [f32]) {
        matmul(&self.w.q(), x, n_tokens, out);
        add_bias(out, &self.b);
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

#[derive(Clone, Debug)]
pub struct BertWeights<'a> {
    pub word: Matrix<'a>,
    pub position: Matrix<'a>,
    pub token_type: Matrix<'a>,
    pub emb_norm: Norm,
    pub layers: Vec<Layer<'a>>,
    /// Every matrix's name and stored type, in load order.
    pub types: Vec<(String, GgmlType)>,
}

impl BertWeights<'_> {
    /// Bytes held by the 2-D weights (what quantization shrinks).
    pub fn matrix_bytes(&self) -> usize {
        let lin = |l: &Linear| l.w.data.len();
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
    quant: Option<GgmlType>,
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
            Some(want) => {
                let ty = fit_row(want, cols as u64);
                let values = file.to_f32(info)?;
                Matrix {
                    ty,
                    rows,
                    cols,
                    data: Cow::Owned(quantize(&values, cols, ty)?),
                }
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
        Ok(Linear {
            w: self.matrix(&format!("{n}.weight"), rows, cols)?,
            b: self.vector(&format!("{n}.bias"), rows)?,
        })
    }

    fn norm(&self, n: &str, len: usize) -> Result<Norm> {
        Ok(Norm {
            gamma: self.vector(&format!("{n}.weight"), len)?,
            beta: self.vector(&format!("{n}.bias"), len)?,
        })
    }
}

/// Quantizes a row-major `[rows, cols]` matrix row by row, rows in parallel.
pub fn quantize(values: &[f32], cols: usize, ty: GgmlType) -> Result<Vec<u8>> {
    let fmt = block_format(ty)
        .filter(|f| f.can_quantize())
        .ok_or_else(|| BertError::Quantize {
            ty,
            msg: "lowbit has no quantizer for this type".into(),
        })?;
    let row_bytes = ty
        .row_bytes(cols as u64)
        .ok_or_else(|| BertError::Quantize {
            ty,
            msg: format!("rows of {cols} do not split into blocks"),
        })? as usize;
    let mut out = vec![0u8; values.len() / cols * row_bytes];
    out.par_chunks_mut(row_bytes)
        .zip(values.par_chunks(cols))
        .try_for_each(|(dst, src)| fmt.quantize_row(src, None, dst))?;
    Ok(out)
}

impl<'a> BertWeights<'a> {
    /// Loads every encoder weight (the pooler head is not used by sentence embeddings). With
    /// `quant`, each 2-D weight — embeddings tables included — is quantized to that type, or to
    /// [`lowbit_formats::fallback::fit_row`]'s fallback where its rows do not split into the type's blocks.
    pub fn load(
        hf: &'a HfModel,
        cfg: &BertConfig,
        quant: Option<GgmlType>,
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_then_dequantize_round_trips_rows() {
        let vals: Vec<f32> = (0..2 * 64).map(|i| (i as f32 * 0.37).sin()).collect();
        let bytes = quantize(&vals, 64, GgmlType::Q8_0).unwrap();
        let m = Matrix::new(GgmlType::Q8_0, 2, 64, Cow::Owned(bytes)).unwrap();
        let mut row = vec![0f32; 64];
        m.row_into(1, &mut row);
        let err = row
            .iter()
            .zip(&vals[64..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 0.01, "{err}");
    }
}
