//! Quantizes a whole model, one tensor at a time, so peak memory is bounded by the largest tensor
//! (its f32 values plus its quantized bytes), never by the model.

use crate::plan::{TensorDesc, TensorPlan};
use crate::tensor::{dequantize_tensor, quantize_tensor};
use lowbit_formats::metrics::ErrorStats;
use lowbit_formats::{FormatError, GgmlType};
use std::borrow::Cow;
use std::time::Instant;

/// Errors of a pipeline run; each names the tensor it happened on.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("tensor {tensor}")]
    Format { tensor: String, source: FormatError },
    #[error("tensor {tensor}: reading the source failed: {message}")]
    Source { tensor: String, message: String },
    #[error("tensor {tensor}: writing the output failed: {message}")]
    Sink { tensor: String, message: String },
    #[error("tensor {tensor}: the importance matrix has {got} weights per row, the tensor's rows have {expected}")]
    ImportanceShape {
        tensor: String,
        expected: usize,
        got: usize,
    },
}

/// Where tensors come from: a GGUF file, a Hugging Face folder, a test's memory.
pub trait SourceModel: Sync {
    /// Every tensor, in the order they will be written.
    fn tensors(&self) -> &[TensorDesc];
    /// The tensor's bytes in its source type (for tensors copied unchanged).
    fn raw(&self, index: usize) -> Result<Cow<'_, [u8]>, String>;
    /// The tensor as f32, dequantized or converted as needed.
    fn values(&self, index: usize) -> Result<Cow<'_, [f32]>, String> {
        let t = &self.tensors()[index];
        let raw = self.raw(index)?;
        if t.source == GgmlType::F32 {
            if let Cow::Borrowed(b) = raw {
                if let Ok(v) = cast_f32(b) {
                    return Ok(Cow::Borrowed(v));
                }
            }
        }
        let n: u64 = t.dims.iter().product();
        dequantize_tensor(&raw, t.source, n as usize, t.dims[0] as usize)
            .map(Cow::Owned)
            .map_err(|e| e.to_string())
    }
}

/// Views little-endian f32 bytes as f32 without copying when they are aligned.
pub fn cast_f32(bytes: &[u8]) -> Result<&[f32], ()> {
    if cfg!(target_endian = "little") && bytes.len() % 4 == 0 {
        // SAFETY: every bit pattern is a valid f32; `align_to` only yields the aligned middle.
        let (pre, mid, post) = unsafe { bytes.align_to::<f32>() };
        if pre.is_empty() && post.is_empty() {
            return Ok(mid);
        }
    }
    Err(())
}

/// Where quantized tensors go, in plan order.
pub trait TensorSink {
    fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<(), String>;
}

/// Per-column importance for a tensor, by GGUF tensor name.
pub trait ImportanceSource: Sync {
    fn importance(&self, tensor: &str) -> Option<&[f32]>;
}

/// What happened to one tensor.
#[derive(Clone, Debug)]
pub struct TensorReport {
    pub name: String,
    pub dims: Vec<u64>,
    pub source: GgmlType,
    pub target: GgmlType,
    pub fell_back_from: Option<GgmlType>,
    pub bytes: u64,
    pub seconds: f64,
    /// None for tensors copied unchanged.
    pub stats: Option<ErrorStats>,
    pub used_importance: bool,
}

/// Progress events for a front end to display.
pub enum Progress<'a> {
    Tensor {
        index: usize,
        total: usize,
        name: &'a str,
        elements: u64,
    },
}

/// Runs `plans` (one per tensor of `source`, same order), writing into `sink`.
pub fn run(
    source: &dyn SourceModel,
    plans: &[TensorPlan],
    importance: Option<&dyn ImportanceSource>,
    sink: &mut dyn TensorSink,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<TensorReport>, QuantError> {
    let descs = source.tensors();
    let mut reports = Vec::with_capacity(plans.len());
    for (index, (desc, plan)) in descs.iter().zip(plans).enumerate() {
        let elements: u64 = desc.dims.iter().product();
        progress(Progress::Tensor {
            index,
            total: plans.len(),
            name: &desc.name,
            elements,
        });
        let start = Instant::now();
        let name = &desc.name;
        let (bytes, stats, used_importance) = if plan.target == desc.source {
            let raw = source.raw(index).map_err(|message| QuantError::Source {
                tensor: name.clone(),
                message,
            })?;
            sink.write_tensor(name, &raw)
                .map_err(|message| QuantError::Sink {
                    tensor: name.clone(),
                    message,
                })?;
            (raw.len() as u64, None, false)
        } else {
            let values = source.values(index).map_err(|message| QuantError::Source {
                tensor: name.clone(),
                message,
            })?;
            let row_len = desc.dims[0] as usize;
            let imp = importance.and_then(|m| m.importance(name));
            if let Some(imp) = imp {
                if imp.len() != row_len {
                    return Err(QuantError::ImportanceShape {
                        tensor: name.clone(),
                        expected: row_len,
                        got: imp.len(),
                    });
                }
            }
            let q = quantize_tensor(&values, row_len, plan.target, imp).map_err(|source| {
                QuantError::Format {
                    tensor: name.clone(),
                    source,
                }
            })?;
            drop(values);
            sink.write_tensor(name, &q.bytes)
                .map_err(|message| QuantError::Sink {
                    tensor: name.clone(),
                    message,
                })?;
            (q.bytes.len() as u64, Some(q.stats), imp.is_some())
        };
        reports.push(TensorReport {
            name: name.clone(),
            dims: desc.dims.clone(),
            source: desc.source,
            target: plan.target,
            fell_back_from: plan.fell_back_from,
            bytes,
            seconds: start.elapsed().as_secs_f64(),
            stats,
            used_importance,
        });
    }
    Ok(reports)
}
