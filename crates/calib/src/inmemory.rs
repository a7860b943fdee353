//! Quantizing a loaded model in memory, to measure it without writing a file: `embed --quantize`
//! (a BERT encoder's matrices through lowbit-quant's round-to-nearest) and `perplexity
//! --quantize T --method M` (an LLM, any method, GGUF types or affine layouts — the latter have
//! no GGUF type and are measured here through the same engine path, as their dequantized
//! values).

use crate::error::CalibError;
use crate::imatrix::{self, ImatrixOptions};
use crate::quantize_file::plan_targets;
use crate::sequential::{self, to_matrix, DriverEvent, DriverOptions, SiteReport};
use crate::windows::CalibWindows;
use lowbit_engine::model::{LinearId, Model};
use lowbit_engine::tensor::WeightQuantizer;
use lowbit_files::GgufFile;
use lowbit_formats::fallback::fit_row;
use lowbit_formats::GgmlType;
use lowbit_quant::methods::{rtn::Rtn, Method, QuantOutcome, TensorJob};
use lowbit_quant::role::{role_of, Role};
use lowbit_quant::sources::gguf::{model_facts, GgufSource};
use lowbit_quant::pipeline::SourceModel;
use lowbit_quant::{plan, InputStats, PlanOptions, Target};
use std::collections::BTreeMap;

/// One matrix rounded to nearest onto `target`, without statistics.
fn round_to_nearest(name: &str, values: &[f32], rows: usize, cols: usize, target: Target) -> Result<QuantOutcome, String> {
    quantize_one(&Rtn, name, rows, cols, values, target, None).map_err(|e| e.to_string())
}

/// `embed --quantize TYPE`: every matrix to `ty` by round-to-nearest, or to
/// [`fit_row`]'s fallback where its rows do not split into `ty`'s blocks.
pub struct RtnQuantizer(pub GgmlType);

impl WeightQuantizer for RtnQuantizer {
    fn quantize(
        &self,
        name: &str,
        values: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<(GgmlType, Vec<u8>), String> {
        let ty = fit_row(self.0, cols as u64);
        match round_to_nearest(name, values, rows, cols, Target::Block(ty))?.encoded {
            lowbit_quant::methods::Encoded::Blocks(b) => Ok((ty, b)),
            _ => Err("round-to-nearest gave no blocks".into()),
        }
    }
}

/// `embed --quantize w8a8…`: every layer matrix rounded to nearest onto an affine layout
/// (`int8-ch-sym`), handed to the encoder as the f32 values the int8 codes stand for (the
/// layout has no GGUF type) and, for symmetric int8 per channel, as the codes themselves
/// ([`WeightQuantizer::quantize_int8`]), which the encoder's int8 × int8 products use. The
/// embedding tables (names containing `embeddings`) are looked up, not multiplied: they stay
/// float, as W8A8 checkpoints keep them.
pub struct AffineRtnQuantizer(pub lowbit_formats::grid::AffineRow);

impl WeightQuantizer for AffineRtnQuantizer {
    fn quantize(
        &self,
        name: &str,
        values: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<(GgmlType, Vec<u8>), String> {
        if name.contains("embeddings") {
            return Ok((GgmlType::F32, values.iter().flat_map(|x| x.to_le_bytes()).collect()));
        }
        let target = Target::Affine(self.0);
        let out = round_to_nearest(name, values, rows, cols, target)?;
        let v = out.dequantize(&target, rows, cols).map_err(|e| e.to_string())?;
        Ok((GgmlType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
    }

    fn offers_int8(&self) -> bool {
        self.0.bits == 8 && self.0.symmetric && self.0.group.is_none()
    }

    /// The same rounding's codes, when the layout is symmetric int8 per channel.
    fn quantize_int8(&self, name: &str, values: &[f32], rows: usize, cols: usize) -> Option<Result<(Vec<i8>, Vec<f32>), String>> {
        if name.contains("embeddings") {
            return None;
        }
        self.offers_int8().then(|| {
            let out = round_to_nearest(name, values, rows, cols, Target::Affine(self.0))?;
            let mut map = std::collections::BTreeMap::new();
            map.insert(name.to_string(), out);
            crate::int8_weights::from_outcomes(&map)
                .pop()
                .map(|(_, codes, scales)| (codes, scales))
                .ok_or_else(|| format!("{name}: the int8 layout gave no int8 codes"))
        })
    }
}

/// What to quantize a loaded LLM to.
#[derive(Clone, Debug)]
pub enum InMemoryTarget {
    /// A GGUF type or mix, planned exactly as `quantize` plans it.
    Plan(PlanOptions),
    /// An affine layout for every layer linear; embedding and LM head stay as they are (as
    /// GPTQ/AWQ checkpoints leave them).
    Affine(lowbit_formats::grid::AffineRow),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct InMemoryTensor {
    pub name: String,
    pub target: String,
    pub bytes: u64,
    #[serde(flatten)]
    pub notes: lowbit_quant::methods::MethodNotes,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct InMemoryReport {
    pub method: &'static str,
    /// Bytes the quantized matrices take (affine: codes, f16 scales and packed zeros).
    pub matrix_bytes: u64,
    pub matrix_elements: u64,
    pub bits_per_weight: f64,
    pub tensors: Vec<InMemoryTensor>,
    pub sites: Vec<SiteReport>,
    pub seconds: f64,
    /// Every quantized tensor's codes, for writers that store them (a checkpoint folder).
    #[serde(skip)]
    pub outcomes: BTreeMap<String, QuantOutcome>,
}

/// Quantizes `model` (loaded from `file`) in place.
pub fn quantize_loaded(
    model: &mut Model,
    file: &GgufFile,
    target: &InMemoryTarget,
    method: &dyn Method,
    windows: Option<&CalibWindows>,
    sequential: bool,
    progress: &mut dyn FnMut(DriverEvent),
) -> Result<InMemoryReport, CalibError> {
    let t0 = std::time::Instant::now();
    let needs = method.needs();
    if needs.calibration() && windows.is_none() {
        return Err(CalibError::Invalid(format!(
            "--method {} needs calibration text: give --calib FILE",
            method.name()
        )));
    }
    let source = GgufSource::new(file);
    let targets: BTreeMap<String, Target> = match target {
        InMemoryTarget::Plan(opts) => {
            let facts = model_facts(file.metadata(), source.tensors(), windows.is_some());
            let plans = plan(source.tensors(), &facts, opts);
            plan_targets(source.tensors(), &plans)
        }
        InMemoryTarget::Affine(a) => source
            .tensors()
            .iter()
            .filter(|d| {
                d.name.starts_with("blk.") && role_of(&d.name, d.dims.len()) != Role::Keep
            })
            .map(|d| (d.name.clone(), Target::Affine(*a)))
            .collect(),
    };
    // The main target must suit the method; other types of a mix it cannot produce are
    // rounded to nearest (as `quantize` does).
    let main = match target {
        InMemoryTarget::Plan(o) => Target::Block(o.preset.base_type()),
        InMemoryTarget::Affine(a) => Target::Affine(*a),
    };
    method
        .check_target(&main)
        .map_err(|why| CalibError::Invalid(format!("--method {}: {why}", method.name())))?;
    let mut outcomes: BTreeMap<String, QuantOutcome> = BTreeMap::new();
    let mut sites = Vec::new();
    if needs.calibration() {
        let out = sequential::run(
            model,
            windows.expect("checked above"),
            &|n| targets.get(n).copied(),
            method,
            &DriverOptions {
                sequential,
                head: true,
            },
            progress,
        )?;
        outcomes = out.outcomes;
        sites = out.sites;
    } else {
        let stats: BTreeMap<String, InputStats> = match windows {
            Some(w) if needs.importance => {
                imatrix::collect(model, w, &ImatrixOptions::default(), &mut |_, _| {})?
            }
            _ => BTreeMap::new(),
        };
        for il in 0..model.config.n_layer {
            for id in LinearId::ALL {
                let name = id.tensor_name(il);
                let Some(&t) = targets.get(&name) else { continue };
                let m = model.weights.layers[il].linear(id);
                let (rows, cols) = (m.rows, m.cols);
                let values = m.to_f32();
                let out = quantize_one(method, &name, rows, cols, &values, t, stats.get(&name))?;
                model.set_linear(il, id, to_matrix(&out, &t, rows, cols, &name)?)?;
                outcomes.insert(name, out);
            }
        }
        let head = if model.weights.output.is_some() { "output.weight" } else { "token_embd.weight" };
        for name in ["output.weight", "token_embd.weight"] {
            let Some(&t) = targets.get(name) else { continue };
            let m = if name == "output.weight" {
                match &model.weights.output {
                    Some(m) => m,
                    None => continue,
                }
            } else {
                &model.weights.token_embd
            };
            let (rows, cols) = (m.rows, m.cols);
            let values = m.to_f32();
            let out = quantize_one(method, name, rows, cols, &values, t, stats.get(name))?;
            let matrix = to_matrix(&out, &t, rows, cols, name)?;
            if name == head {
                model.set_output(matrix)?;
            } else {
                model.set_embedding(matrix)?;
            }
            outcomes.insert(name.to_string(), out);
        }
    }
    // An untied embedding the driver did not reach: round to nearest.
    if model.weights.output.is_some() && !outcomes.contains_key("token_embd.weight") {
        if let Some(&t) = targets.get("token_embd.weight") {
            let m = &model.weights.token_embd;
            let (rows, cols) = (m.rows, m.cols);
            let values = m.to_f32();
            let out = quantize_one(&Rtn, "token_embd.weight", rows, cols, &values, t, None)?;
            model.set_embedding(to_matrix(&out, &t, rows, cols, "token_embd.weight")?)?;
            outcomes.insert("token_embd.weight".into(), out);
        }
    }
    let mut tensors = Vec::new();
    let (mut bytes, mut elements) = (0u64, 0u64);
    for (name, out) in &outcomes {
        let t = targets[name];
        let d = source
            .tensors()
            .iter()
            .find(|d| &d.name == name)
            .expect("targets come from the file's tensors");
        let (cols, n) = (d.dims[0] as usize, d.dims.iter().product::<u64>());
        let b = match t {
            Target::Block(ty) => ty.row_bytes(cols as u64).unwrap_or(0) * (n / cols as u64),
            Target::Affine(a) => (a.bits_per_weight(cols) * n as f64 / 8.0).round() as u64,
        };
        bytes += b;
        elements += n;
        tensors.push(InMemoryTensor {
            name: name.clone(),
            target: t.name(),
            bytes: b,
            notes: out.notes.clone(),
        });
    }
    Ok(InMemoryReport {
        method: method.name(),
        matrix_bytes: bytes,
        matrix_elements: elements,
        bits_per_weight: bytes as f64 * 8.0 / elements.max(1) as f64,
        tensors,
        sites,
        seconds: t0.elapsed().as_secs_f64(),
        outcomes,
    })
}

fn quantize_one(
    method: &dyn Method,
    name: &str,
    rows: usize,
    cols: usize,
    values: &[f32],
    target: Target,
    stats: Option<&InputStats>,
) -> Result<QuantOutcome, CalibError> {
    let job = TensorJob {
        name,
        role: role_of(name, 2),
        rows,
        cols,
        values,
        target,
        stats,
    };
    if method.check_target(&target).is_err() {
        let mut o = Rtn.quantize(&job)?;
        o.notes.chosen = Some("rtn");
        return Ok(o);
    }
    Ok(method.quantize(&job)?)
}
