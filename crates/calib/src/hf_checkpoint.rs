//! `lowbit quantize IN out_dir/ --format compressed-tensors --scheme S`: a loaded model's layer
//! linears quantized by any method onto the scheme's affine layout (in memory, through the same
//! path `perplexity --quantize` measures), static activation ranges observed on the quantized
//! model when the scheme has them, and the result written as the compressed-tensors folder that
//! llm-compressor writes and vLLM and transformers load. The embedding and the LM head stay float,
//! as llm-compressor leaves them (`ignore: ["lm_head"]`).

use crate::act_quant::{self, ActReport};
use crate::error::CalibError;
use crate::inmemory::{quantize_loaded, InMemoryReport, InMemoryTarget};
use crate::observers::{Granularity, ObserverKind};
use crate::quantize_file::CalibSpec;
use crate::sequential::DriverEvent;
use crate::windows::CalibWindows;
use lowbit_convert::compressed_tensors::{ActivationStrategy, CtScheme, InputRange, QuantizedLinear, WeightStrategy};
use lowbit_convert::{export_hf_with, ExportDtype, QuantizedExport};
use lowbit_engine::model::{LinearId, Model};
use lowbit_engine::tokenizer::Tokenizer;
use lowbit_files::safetensors::Dtype;
use lowbit_files::GgufFile;
use lowbit_formats::grid::AffineRow;
use lowbit_quant::methods::{method_by_name, Encoded, MethodOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct HfCheckpointSpec {
    pub scheme: CtScheme,
    pub method: String,
    pub method_options: MethodOptions,
    pub calib: Option<CalibSpec>,
    pub sequential: bool,
    /// SmoothQuant's migration strength (the weights are then rounded to nearest).
    pub smoothquant: Option<f32>,
    /// How static activation ranges are chosen.
    pub observer: ObserverKind,
}

#[derive(Clone, Debug, Serialize)]
pub struct HfCheckpointReport {
    pub scheme: String,
    pub format: &'static str,
    pub weights: InMemoryReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activations: Option<ActReport>,
    pub modules: usize,
    /// Zero points a method chose off the integer grid (HQQ), rounded because the format stores
    /// integers; the largest change, in code steps.
    pub rounded_zero_points: usize,
    pub largest_zero_point_change: f32,
    pub safetensors_bytes: u64,
    pub seconds: f64,
}

/// What the run is doing, for a progress bar.
pub enum HfEvent<'a> {
    Weights(DriverEvent<'a>),
    Observe { done: usize, total: usize },
    Writing,
}

/// The affine layout the scheme's weights take.
pub fn weight_layout(scheme: &CtScheme) -> AffineRow {
    AffineRow {
        bits: scheme.bits,
        symmetric: scheme.symmetric,
        group: match scheme.weights {
            WeightStrategy::Channel => None,
            WeightStrategy::Group(g) => Some(g),
        },
    }
}

/// Quantizes the model in `file` and writes the folder `out_dir` (which must not exist, or be
/// empty; it is written beside itself and renamed into place, so a failure leaves nothing).
pub fn quantize_to_hf(
    file: &GgufFile,
    out_dir: &Path,
    spec: &HfCheckpointSpec,
    progress: &mut dyn FnMut(HfEvent),
) -> Result<HfCheckpointReport, CalibError> {
    let t0 = std::time::Instant::now();
    if out_dir.exists() && std::fs::read_dir(out_dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(CalibError::Invalid(format!(
            "{} already exists and is not an empty folder: nothing written",
            out_dir.display()
        )));
    }
    let scheme = spec.scheme;
    let layout = weight_layout(&scheme);
    let mut model = Model::load(file)?;
    for il in 0..model.config.n_layer {
        for id in LinearId::ALL {
            let cols = model.weights.layers[il].linear(id).cols;
            if let Err(e) = layout.check(cols) {
                return Err(CalibError::Invalid(format!(
                    "--scheme {}: {} has rows of {cols}: {e}",
                    scheme.name(),
                    id.tensor_name(il)
                )));
            }
        }
    }
    let static_acts = match scheme.activations {
        Some(ActivationStrategy::StaticTensor { symmetric }) => Some(symmetric),
        _ => None,
    };
    let windows = match &spec.calib {
        Some(c) => {
            let tok = Tokenizer::from_gguf(file)?;
            Some(CalibWindows::from_file(&c.path, &tok, c.ctx, c.chunks)?)
        }
        None => None,
    };
    if static_acts.is_some() && windows.is_none() {
        return Err(CalibError::Invalid(format!(
            "--scheme {} fixes activation ranges from calibration (observer {}): give --calib FILE, or use w8a8-dynamic",
            scheme.name(),
            spec.observer.name()
        )));
    }
    let mut options = spec.method_options.clone();
    let name = match spec.smoothquant {
        Some(a) => {
            if spec.method != "rtn" {
                return Err(CalibError::Invalid(format!(
                    "--smoothquant rounds the smoothed weights to nearest: give it without --method {}",
                    spec.method
                )));
            }
            if !(0.0..=1.0).contains(&a) {
                return Err(CalibError::Invalid(format!("--smoothquant {a}: α must lie in [0, 1]")));
            }
            options.smoothquant.alpha = a;
            "smoothquant"
        }
        None => spec.method.as_str(),
    };
    let method = method_by_name(name, &options).map_err(CalibError::Invalid)?;
    let mut weights = quantize_loaded(
        &mut model,
        file,
        &InMemoryTarget::Affine(layout),
        method.as_ref(),
        windows.as_ref(),
        spec.sequential,
        &mut |e| progress(HfEvent::Weights(e)),
    )?;
    let outcomes = std::mem::take(&mut weights.outcomes);
    let (ranges, activations) = match static_acts {
        Some(symmetric) => {
            let (q, report) = act_quant::calibrate_static(
                &model,
                windows.as_ref().expect("checked above"),
                spec.observer,
                Granularity::Tensor,
                symmetric,
                &mut |done, total| progress(HfEvent::Observe { done, total }),
            )?;
            (Some(q), Some(report))
        }
        None => (None, None),
    };
    let (mut rounded, mut largest) = (0usize, 0f32);
    let mut linears = BTreeMap::new();
    for il in 0..model.config.n_layer {
        for id in LinearId::ALL {
            let name = id.tensor_name(il);
            let out = outcomes.get(&name).ok_or_else(|| {
                CalibError::Invalid(format!("{name} was not quantized"))
            })?;
            let Encoded::Affine(a) = &out.encoded else {
                return Err(CalibError::Invalid(format!("{name}: the method gave GGUF blocks, not {}", layout.name())));
            };
            let qmax = ((1u32 << layout.bits) - 1) as f32;
            let mut zeros = Vec::with_capacity(a.params.len());
            for p in &a.params {
                if p.offset != 0.0 {
                    return Err(CalibError::Invalid(format!("{name}: an offset the checkpoint format cannot store")));
                }
                let z = p.zero.round().clamp(0.0, qmax);
                if z != p.zero {
                    rounded += 1;
                    largest = largest.max((z - p.zero).abs());
                }
                zeros.push(z as u8);
            }
            let input = match &ranges {
                Some(r) => {
                    let q = r.get(il, id.site()).ok_or_else(|| {
                        CalibError::Invalid(format!("{name}: no activation range was observed"))
                    })?;
                    Some(InputRange {
                        scale: q.scale[0],
                        zero: q.zero[0] as i8,
                    })
                }
                None => None,
            };
            linears.insert(
                name,
                QuantizedLinear {
                    rows: a.rows,
                    cols: a.cols,
                    bits: layout.bits,
                    codes: a.codes.clone(),
                    scales: a.params.iter().map(|p| p.scale).collect(),
                    zeros,
                    input,
                    scale_dtype: Dtype::F32,
                    g_idx: None,
                },
            );
        }
    }
    // SmoothQuant and AWQ fold their scales into the norms: write the model's, not the file's.
    let mut floats = BTreeMap::new();
    for (il, l) in model.weights.layers.iter().enumerate() {
        floats.insert(format!("blk.{il}.attn_norm.weight"), l.attn_norm.clone());
        floats.insert(format!("blk.{il}.ffn_norm.weight"), l.ffn_norm.clone());
    }
    progress(HfEvent::Writing);
    let export = QuantizedExport { scheme, linears, floats };
    let summary = export_hf_with(file, out_dir, ExportDtype::F32, Some(&export))
        .map_err(|e| CalibError::Invalid(format!("cannot write {}: {e}", out_dir.display())))?;
    Ok(HfCheckpointReport {
        scheme: scheme.name(),
        format: scheme.format.name(),
        weights,
        activations,
        modules: export.linears.len(),
        rounded_zero_points: rounded,
        largest_zero_point_change: largest,
        safetensors_bytes: summary.safetensors_bytes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
