//! `lowbit quantize IN OUT --type T --method M [--calib FILE]` as a library call: plan the types,
//! gather what the method needs (an importance matrix, or the layer-by-layer calibration), run
//! the pipeline, and write the file — created only once calibration has succeeded, to a
//! temporary file renamed into place, so a failed run leaves nothing behind.

use crate::error::CalibError;
use crate::imatrix::{self, ImatrixOptions};
use crate::sequential::{self, DriverEvent, DriverOptions, SiteReport};
use crate::windows::CalibWindows;
use lowbit_engine::tokenizer::Tokenizer;
use lowbit_engine::Model;
use lowbit_files::gguf::{GgufWriter, TensorSpec, Value};
use lowbit_files::imatrix::Imatrix;
use lowbit_quant::methods::{method_by_name, Method, MethodOptions, Needs, QuantOutcome, TensorJob};
use lowbit_quant::pipeline::{self, Progress, SourceModel, StatsSource, TensorReport};
use lowbit_quant::plan::TensorDesc;
use lowbit_quant::role::{role_of, Role};
use lowbit_quant::sources::gguf::{model_facts, output_metadata, GgufSource};
use lowbit_quant::sources::model_file::ModelFile;
use lowbit_quant::{plan, InputStats, PlanOptions, Preset, QuantError, Target, TensorPlan};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Calibration text and how to cut it.
#[derive(Clone, Debug)]
pub struct CalibSpec {
    pub path: PathBuf,
    /// At most this many windows (all the text gives when None).
    pub chunks: Option<usize>,
    pub ctx: usize,
}

#[derive(Clone, Debug)]
pub struct QuantizeSpec {
    pub plan: PlanOptions,
    pub method: String,
    pub method_options: MethodOptions,
    pub calib: Option<CalibSpec>,
    /// An importance matrix file (llama-imatrix's or lowbit's).
    pub imatrix: Option<PathBuf>,
    pub sequential: bool,
    /// Types chosen per tensor (by a budgeted allocation), over the plan's.
    pub types: Option<BTreeMap<String, lowbit_formats::GgmlType>>,
}

/// Progress of a run, for a front end to display.
pub enum Event<'a> {
    /// Computing the sensitivity table: steps done of total.
    Sensitivity { done: usize, total: usize },
    /// Collecting an importance matrix: windows done of total.
    Imatrix { done: usize, total: usize },
    /// The layer-by-layer calibration.
    Calibrate {
        layer: usize,
        n_layer: usize,
        stage: &'a str,
    },
    /// Writing tensors.
    Tensor {
        index: usize,
        total: usize,
        name: &'a str,
        elements: u64,
    },
}

/// How the calibration went.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationSummary {
    pub file: String,
    pub windows: usize,
    pub ctx: usize,
    pub tokens: usize,
    pub sequential: bool,
    /// Seconds of forward passes and statistics, and of the method's own work.
    pub seconds_forward: f64,
    pub seconds_methods: f64,
    /// AWQ's scales per site.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteReport>,
    /// Tensors whose Hessian needed more damping than asked (Cholesky failed at first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damping_raised: Vec<String>,
}

pub struct QuantizeResult {
    pub reports: Vec<TensorReport>,
    pub preset: Preset,
    pub method: &'static str,
    pub calibration: Option<CalibrationSummary>,
    /// Source tensors that were already quantized (`name (type)`).
    pub requantized: Vec<String>,
}

/// Quantizes `input` into `output`.
pub fn quantize_file(
    input: &ModelFile,
    output: &Path,
    spec: &QuantizeSpec,
    progress: &mut dyn FnMut(Event),
) -> Result<QuantizeResult, CalibError> {
    let method = method_by_name(&spec.method, &spec.method_options).map_err(CalibError::Invalid)?;
    let needs = method.needs();
    if needs.calibration() && spec.calib.is_none() {
        return Err(CalibError::Invalid(format!(
            "--method {} needs calibration text: give --calib FILE (e.g. WikiText-2's valid split)",
            method.name()
        )));
    }
    if spec.calib.is_some() && spec.imatrix.is_some() {
        return Err(CalibError::Invalid(
            "give either --calib or --imatrix, not both".into(),
        ));
    }
    let file = &input.file;
    let source = GgufSource::new(file);
    let descs = source.tensors().to_vec();
    let has_importance = spec.calib.is_some() || spec.imatrix.is_some();
    let facts = model_facts(file.metadata(), &descs, has_importance);
    let mut plans: Vec<TensorPlan> = plan(&descs, &facts, &spec.plan);
    if let Some(types) = &spec.types {
        for (p, d) in plans.iter_mut().zip(&descs) {
            if let Some(&t) = types.get(&p.name) {
                p.target = t;
                p.fell_back_from = None;
                p.keep = t == d.source;
            }
        }
    }
    check_plans(&plans, method.as_ref(), spec.plan.preset)?;
    let requantized = descs
        .iter()
        .zip(&plans)
        .filter(|(d, p)| d.source.block_elems() > 1 && p.target != d.source)
        .map(|(d, _)| format!("{} ({})", d.name, d.source))
        .collect();

    // What the method will know about each tensor's input.
    let mut stats: BTreeMap<String, InputStats> = BTreeMap::new();
    let mut provenance: Vec<(String, Value)> = vec![(
        "lowbit.quantize.method".into(),
        Value::from(method.name()),
    )];
    let mut calibration = None;
    let mut driver_out = None;
    if let Some(p) = &spec.imatrix {
        let m = Imatrix::load(p)?;
        let shapes: Vec<(String, usize)> =
            descs.iter().map(|d| (d.name.clone(), d.dims[0] as usize)).collect();
        stats = imatrix::stats_from_imatrix(&m, &shapes, p)?;
        provenance.extend(imatrix_keys(&p.display().to_string(), &m));
    }
    if let Some(c) = &spec.calib {
        let t0 = Instant::now();
        let mut model = Model::load(file)?;
        let tok = Tokenizer::from_gguf(file)?;
        let windows = CalibWindows::from_file(&c.path, &tok, c.ctx, c.chunks)?;
        provenance.push(("lowbit.quantize.calibration.file".into(), Value::from(
            c.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        )));
        provenance.push(("lowbit.quantize.calibration.windows".into(), Value::U32(windows.len() as u32)));
        provenance.push(("lowbit.quantize.calibration.ctx".into(), Value::U32(c.ctx as u32)));
        if needs.calibration() {
            let targets = plan_targets(&descs, &plans);
            let out = sequential::run(
                &mut model,
                &windows,
                &|name| targets.get(name).copied(),
                method.as_ref(),
                &DriverOptions {
                    sequential: spec.sequential,
                    head: true,
                },
                &mut |e| match e {
                    DriverEvent::Layer { layer, n_layer, stage } => {
                        progress(Event::Calibrate { layer, n_layer, stage })
                    }
                },
            )?;
            calibration = Some(CalibrationSummary {
                file: c.path.display().to_string(),
                windows: windows.len(),
                ctx: c.ctx,
                tokens: windows.tokens(),
                sequential: spec.sequential,
                seconds_forward: out.seconds_forward,
                seconds_methods: out.seconds_methods,
                sites: out.sites.clone(),
                damping_raised: out
                    .outcomes
                    .iter()
                    .filter(|(_, o)| o.notes.damping_retries > 0)
                    .map(|(n, o)| format!("{n}: {:.0e}", o.notes.damping.unwrap_or(0.0)))
                    .collect(),
            });
            // Tensors the driver produced are written from its results, even where the plan
            // would have copied the source (AWQ's scales change them; GPTQ keeps on-grid data).
            for p in plans.iter_mut() {
                if out.outcomes.contains_key(&p.name) || out.norms.contains_key(&p.name) {
                    p.keep = false;
                }
            }
            driver_out = Some(out);
        } else {
            stats = imatrix::collect(&model, &windows, &ImatrixOptions::default(), &mut |done, total| {
                progress(Event::Imatrix { done, total })
            })?;
            calibration = Some(CalibrationSummary {
                file: c.path.display().to_string(),
                windows: windows.len(),
                ctx: c.ctx,
                tokens: windows.tokens(),
                sequential: false,
                seconds_forward: t0.elapsed().as_secs_f64(),
                seconds_methods: 0.0,
                sites: Vec::new(),
                damping_raised: Vec::new(),
            });
        }
    }

    let (outcomes, norms) = match driver_out {
        Some(o) => (o.outcomes, o.norms),
        None => (BTreeMap::new(), BTreeMap::new()),
    };
    let overlay = Overlay {
        base: &source,
        norms: &norms,
    };
    let calibrated = Calibrated {
        outcomes: &outcomes,
        method: method.as_ref(),
    };
    let specs: Vec<TensorSpec> = descs
        .iter()
        .zip(&plans)
        .map(|(d, p)| TensorSpec::new(d.name.clone(), &d.dims, p.target))
        .collect();
    // A budgeted mix is no named llama.cpp type: LLAMA_FTYPE_GUESSED.
    let file_type = if spec.types.is_some() { 1024 } else { spec.plan.preset.file_type() };
    let metadata = output_metadata(file.metadata(), file_type, &provenance);
    let mut writer = GgufWriter::create(output, metadata, specs)?;
    let stats_src = MapStats(&stats);
    let reports = pipeline::run(
        &overlay,
        &plans,
        &calibrated,
        (!stats.is_empty()).then_some(&stats_src as &dyn StatsSource),
        &mut writer,
        &mut |p| match p {
            Progress::Tensor {
                index,
                total,
                name,
                elements,
            } => progress(Event::Tensor {
                index,
                total,
                name,
                elements,
            }),
        },
    )?;
    writer.finish()?;
    Ok(QuantizeResult {
        reports,
        preset: spec.plan.preset,
        method: method.name(),
        calibration,
        requantized,
    })
}

/// Every planned target must be writable, and the method must be able to produce the main one.
fn check_plans(plans: &[TensorPlan], method: &dyn Method, preset: Preset) -> Result<(), CalibError> {
    for p in plans {
        let quantizable = lowbit_formats::block_format(p.target).is_some_and(|f| f.can_quantize());
        if !p.keep && !quantizable {
            return Err(CalibError::Invalid(format!(
                "tensor {}: lowbit reads {} but cannot quantize to it",
                p.name, p.target
            )));
        }
    }
    method
        .check_target(&Target::Block(preset.base_type()))
        .map_err(|why| CalibError::Invalid(format!("--method {} --type {preset}: {why}", method.name())))
}

/// The target of every matrix the plan gives a type (norms and other kept tensors excluded).
pub fn plan_targets(descs: &[TensorDesc], plans: &[TensorPlan]) -> BTreeMap<String, Target> {
    descs
        .iter()
        .zip(plans)
        .filter(|(d, _)| role_of(&d.name, d.dims.len()) != Role::Keep)
        .map(|(_, p)| (p.name.clone(), Target::Block(p.target)))
        .collect()
}

/// llama.cpp's provenance keys for a file quantized with an importance matrix.
fn imatrix_keys(path: &str, m: &Imatrix) -> Vec<(String, Value)> {
    let mut v = vec![
        ("quantize.imatrix.file".to_string(), Value::String(path.to_string())),
        (
            "quantize.imatrix.entries_count".to_string(),
            Value::I32(m.entries().len() as i32),
        ),
    ];
    if let Some(d) = m.dataset() {
        v.push(("quantize.imatrix.dataset".into(), Value::String(d.to_string())));
    }
    if let Some(c) = m.chunk_count() {
        v.push(("quantize.imatrix.chunks_count".into(), Value::I32(c as i32)));
    }
    v
}

struct MapStats<'a>(&'a BTreeMap<String, InputStats>);

impl StatsSource for MapStats<'_> {
    fn stats(&self, tensor: &str) -> Option<&InputStats> {
        self.0.get(tensor)
    }
}

/// The method for the pipeline: the calibration's result where there is one, the method itself
/// (or round-to-nearest where the method cannot serve a tensor's type) elsewhere.
struct Calibrated<'a> {
    outcomes: &'a BTreeMap<String, QuantOutcome>,
    method: &'a dyn Method,
}

impl Method for Calibrated<'_> {
    fn name(&self) -> &'static str {
        self.method.name()
    }
    fn needs(&self) -> Needs {
        Needs::default()
    }
    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError> {
        if let Some(o) = self.outcomes.get(job.name) {
            return Ok(o.clone());
        }
        let needs = self.method.needs();
        let usable = self.method.check_target(&job.target).is_ok()
            && (!needs.calibration() || job.stats.is_some_and(|s| s.hessian.is_some()));
        if usable {
            self.method.quantize(job)
        } else {
            // Tensors the calibration does not reach (the embedding of an untied model) or a
            // type the method cannot produce (Q6_K in an HQQ mix): round to nearest.
            let mut o = lowbit_quant::methods::rtn::Rtn.quantize(job)?;
            o.notes.chosen = Some("rtn");
            Ok(o)
        }
    }
}

/// The source with the norms that folded scales changed.
struct Overlay<'a> {
    base: &'a GgufSource<'a>,
    norms: &'a BTreeMap<String, Vec<f32>>,
}

impl SourceModel for Overlay<'_> {
    fn tensors(&self) -> &[TensorDesc] {
        self.base.tensors()
    }
    fn raw(&self, index: usize) -> Result<Cow<'_, [u8]>, String> {
        let name = &self.base.tensors()[index].name;
        match self.norms.get(name) {
            Some(v) => Ok(Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect())),
            None => self.base.raw(index),
        }
    }
    fn values(&self, index: usize) -> Result<Cow<'_, [f32]>, String> {
        let name = &self.base.tensors()[index].name;
        match self.norms.get(name) {
            Some(v) => Ok(Cow::Borrowed(v)),
            None => self.base.values(index),
        }
    }
}
