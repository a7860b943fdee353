//! Quantizes a whole model, one tensor at a time, so peak memory is bounded by the largest tensor
//! (its f32 values plus its quantized bytes), never by the model.

use crate::methods::{Encoded, Method, MethodNotes, TensorJob};
use crate::plan::{TensorDesc, TensorPlan};
use crate::role::role_of;
use crate::stats::InputStats;
use crate::target::Target;
use crate::tensor::dequantize_tensor;
use lowbit_formats::metrics::ErrorStats;
use lowbit_formats::GgmlType;
use std::borrow::Cow;
use std::time::Instant;

pub use crate::error::QuantError;

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

/// What calibration (or an importance matrix) knows about each tensor's input, by GGUF name.
pub trait StatsSource: Sync {
    fn stats(&self, tensor: &str) -> Option<&InputStats>;
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
    /// The method that produced the tensor (None for tensors copied unchanged).
    pub method: Option<&'static str>,
    pub notes: MethodNotes,
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

/// Runs `plans` (one per tensor of `source`, same order) through `method`, writing into `sink`.
/// `stats` gives the method what calibration (or an importance matrix) knows of each input.
pub fn run(
    source: &dyn SourceModel,
    plans: &[TensorPlan],
    method: &dyn Method,
    stats: Option<&dyn StatsSource>,
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
        let sink_err = |message| QuantError::Sink {
            tensor: name.clone(),
            message,
        };
        let source_err = |message| QuantError::Source {
            tensor: name.clone(),
            message,
        };
        let report = |bytes, stats, used_importance, method, notes| TensorReport {
            name: name.clone(),
            dims: desc.dims.clone(),
            source: desc.source,
            target: plan.target,
            fell_back_from: plan.fell_back_from,
            bytes,
            seconds: start.elapsed().as_secs_f64(),
            stats,
            used_importance,
            method,
            notes,
        };
        if plan.keep {
            let raw = source.raw(index).map_err(source_err)?;
            sink.write_tensor(name, &raw).map_err(sink_err)?;
            reports.push(report(raw.len() as u64, None, false, None, MethodNotes::default()));
            continue;
        }
        let values = source.values(index).map_err(source_err)?;
        let cols = desc.dims[0] as usize;
        let rows = if cols == 0 { 0 } else { values.len() / cols };
        let st = stats.and_then(|m| m.stats(name));
        if let Some(s) = st {
            if s.cols != cols {
                return Err(QuantError::ImportanceShape {
                    tensor: name.clone(),
                    expected: cols,
                    got: s.cols,
                });
            }
        }
        let job = TensorJob {
            name,
            role: role_of(name, desc.dims.len()),
            rows,
            cols,
            values: &values,
            target: Target::Block(plan.target),
            stats: st,
        };
        let out = method.quantize(&job).map_err(|e| e.on(name))?;
        let Encoded::Blocks(bytes) = &out.encoded else {
            return Err(QuantError::Method {
                tensor: name.clone(),
                message: "an affine result cannot be written to a GGUF file".into(),
            });
        };
        let back = dequantize_tensor(bytes, plan.target, values.len(), cols).map_err(|source| {
            QuantError::Format {
                tensor: name.clone(),
                source,
            }
        })?;
        let mut es = ErrorStats::default();
        es.add(&values, &back).map_err(|source| QuantError::Format {
            tensor: name.clone(),
            source,
        })?;
        drop((values, back));
        sink.write_tensor(name, bytes).map_err(sink_err)?;
        reports.push(report(
            bytes.len() as u64,
            Some(es),
            st.is_some(),
            Some(method.name()),
            out.notes,
        ));
    }
    Ok(reports)
}
