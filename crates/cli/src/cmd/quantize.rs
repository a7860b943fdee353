//! `lowbit quantize IN OUT --type T`: plan the types, quantize tensor by tensor into a temporary
//! file beside OUT, rename it into place, and report size, bits per weight, time and error.

use crate::output::{human_bytes, print_json};
use crate::progress;
use anyhow::{bail, Context, Result};
use lowbit_files::gguf::{GgufFile, GgufWriter, TensorSpec, Value};
use lowbit_files::imatrix::Imatrix;
use lowbit_files::same_file;
use lowbit_formats::metrics::ErrorStats;
use lowbit_formats::GgmlType;
use lowbit_quant::pipeline::{self, ImportanceSource, Progress, SourceModel, TensorReport};
use lowbit_quant::sources::gguf::{model_facts, GgufSource};
use lowbit_quant::sources::hf::HfSource;
use lowbit_quant::{plan, PlanOptions, Preset, TensorPlan};
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Input: a GGUF file or a Hugging Face model folder (safetensors + config.json + tokenizer).
    input: PathBuf,
    /// Output GGUF file (written to a temporary file, then renamed into place).
    output: PathBuf,
    /// A block type (Q8_0, Q6_K, IQ4_NL, …) or a llama.cpp mix (Q4_K_M, Q3_K_S, …).
    #[arg(long = "type", short = 't')]
    ty: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Per-tensor override, REGEX=TYPE; repeatable, first match wins.
    #[arg(long = "tensor-type", value_name = "REGEX=TYPE")]
    tensor_type: Vec<String>,
    /// An importance matrix from llama.cpp (`llama-imatrix`, GGUF or legacy .dat).
    #[arg(long)]
    imatrix: Option<PathBuf>,
    /// Every matrix gets the base type: no per-role mix (fallbacks still apply).
    #[arg(long)]
    pure: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

struct ImatrixSource(Imatrix);

impl ImportanceSource for ImatrixSource {
    fn importance(&self, tensor: &str) -> Option<&[f32]> {
        self.0.get(tensor)
    }
}

#[derive(Serialize)]
struct TypeSummary {
    tensors: usize,
    elements: u64,
    bytes: u64,
    bits_per_weight: f64,
    seconds: f64,
    rmse: Option<f64>,
    relative_rmse: Option<f64>,
    sqnr_db: Option<f64>,
    max_abs_error: Option<f64>,
    cosine: Option<f64>,
}

#[derive(Serialize)]
struct TensorJson {
    name: String,
    dims: Vec<u64>,
    source: String,
    target: String,
    fell_back_from: Option<String>,
    bytes: u64,
    seconds: f64,
    used_importance: bool,
    rmse: Option<f64>,
    relative_rmse: Option<f64>,
    sqnr_db: Option<f64>,
    max_abs_error: Option<f64>,
    cosine: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    input: String,
    output: String,
    preset: String,
    threads: usize,
    input_bytes: u64,
    output_bytes: u64,
    elements: u64,
    bits_per_weight: f64,
    seconds: f64,
    requantized_from: Vec<String>,
    fell_back: Vec<String>,
    types: BTreeMap<String, TypeSummary>,
    tensors: Vec<TensorJson>,
}

fn parse_override(s: &str) -> Result<(Regex, GgmlType)> {
    let (re, ty) = s.rsplit_once('=').with_context(|| format!("--tensor-type {s:?}: expected REGEX=TYPE"))?;
    let re = Regex::new(re).with_context(|| format!("--tensor-type {s:?}: bad regular expression"))?;
    let ty = GgmlType::from_name(ty).with_context(|| format!("--tensor-type {s:?}: unknown type {ty:?}"))?;
    Ok((re, ty))
}

fn stats_fields(s: Option<&ErrorStats>) -> [Option<f64>; 5] {
    match s {
        Some(s) => [Some(s.rmse()), Some(s.relative_rmse()), Some(s.sqnr_db()), Some(s.max_abs_err), Some(s.cosine())],
        None => [None; 5],
    }
}

/// Metadata of the output: the input's, with the fields llama.cpp sets after quantizing.
fn output_metadata(input: &[(String, Value)], preset: Preset, imatrix: Option<(&Path, &Imatrix)>) -> Vec<(String, Value)> {
    let mut md: Vec<(String, Value)> = input
        .iter()
        .filter(|(k, _)| !k.starts_with("quantize.imatrix."))
        .cloned()
        .collect();
    let mut set = |key: &str, v: Value| match md.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = v,
        None => md.push((key.to_string(), v)),
    };
    set("general.quantization_version", Value::U32(2));
    set("general.file_type", Value::U32(preset.file_type()));
    if let Some((path, m)) = imatrix {
        set("quantize.imatrix.file", Value::String(path.display().to_string()));
        set("quantize.imatrix.entries_count", Value::I32(m.entries().len() as i32));
        if let Some(d) = m.dataset() {
            set("quantize.imatrix.dataset", Value::String(d.to_string()));
        }
        if let Some(c) = m.chunk_count() {
            set("quantize.imatrix.chunks_count", Value::I32(c as i32));
        }
    }
    md
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let preset = Preset::parse(&args.ty).with_context(|| {
        format!("unknown --type {:?}; expected one of: {}", args.ty, Preset::names().join(", "))
    })?;
    let overrides = args.tensor_type.iter().map(|s| parse_override(s)).collect::<Result<Vec<_>>>()?;
    if same_file(&args.input, &args.output) {
        bail!("refusing to overwrite the input {} with its own quantization", args.input.display());
    }
    let imatrix = match &args.imatrix {
        Some(p) => Some(Imatrix::load(p).context("cannot read the importance matrix")?),
        None => None,
    };
    // The two kinds of input: a GGUF read in place, or an HF folder converted tensor by tensor.
    let (gguf_file, gguf_source, hf_source);
    let (source, input_metadata, input_bytes): (&dyn SourceModel, Vec<(String, Value)>, u64) = if args.input.is_dir() {
        hf_source = HfSource::open(&args.input).context("cannot convert the Hugging Face folder")?;
        if !hf_source.skipped().is_empty() && !args.json {
            eprintln!("note: not converted (not part of the text model): {}", hf_source.skipped().join(", "));
        }
        (&hf_source, hf_source.metadata(), dir_size(&args.input))
    } else {
        gguf_file = GgufFile::open(&args.input)?;
        gguf_source = GgufSource::new(&gguf_file);
        (&gguf_source, gguf_file.metadata().to_vec(), gguf_file.file_size())
    };
    let descs = source.tensors();
    let facts = model_facts(&input_metadata, descs, imatrix.is_some());
    let opts = PlanOptions { preset, pure: args.pure, overrides };
    let plans: Vec<TensorPlan> = plan(descs, &facts, &opts);
    for p in &plans {
        let quantizable = lowbit_formats::block_format(p.target).is_some_and(|f| f.can_quantize());
        if !p.keep && !quantizable {
            bail!("tensor {}: lowbit reads {} but cannot quantize to it", p.name, p.target);
        }
    }

    let requantized: Vec<String> = descs
        .iter()
        .zip(&plans)
        .filter(|(d, p)| d.source.block_elems() > 1 && p.target != d.source)
        .map(|(d, _)| format!("{} ({})", d.name, d.source))
        .collect();
    if !requantized.is_empty() && !args.json {
        eprintln!(
            "warning: {} tensors are already quantized and will be dequantized first; requantizing adds error \
             on top of the original quantization",
            requantized.len()
        );
    }

    let specs: Vec<TensorSpec> =
        descs.iter().zip(&plans).map(|(d, p)| TensorSpec::new(d.name.clone(), &d.dims, p.target)).collect();
    let metadata = output_metadata(&input_metadata, preset, args.imatrix.as_deref().zip(imatrix.as_ref()));
    let mut writer = GgufWriter::create(&args.output, metadata, specs)
        .with_context(|| format!("cannot create {}", args.output.display()))?;

    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().context("cannot start worker threads")?;
    let total: u64 = descs.iter().map(|d| d.dims.iter().product::<u64>()).sum();
    let bar = progress::bar(total, args.json, "quantize");
    let imatrix_src = imatrix.map(ImatrixSource);
    let mut done = 0u64;
    let reports = pool.install(|| {
        pipeline::run(
            source,
            &plans,
            imatrix_src.as_ref().map(|m| m as &dyn ImportanceSource),
            &mut writer,
            &mut |p| match p {
                Progress::Tensor { name, elements, .. } => {
                    bar.set_position(done);
                    bar.set_message(name.to_string());
                    done += elements;
                }
            },
        )
    });
    bar.finish_and_clear();
    let reports = reports?;
    writer.finish().with_context(|| format!("cannot finish {}", args.output.display()))?;
    let output_bytes = std::fs::metadata(&args.output).map(|m| m.len()).unwrap_or(0);

    let report =
        build_report(&args, preset, threads, input_bytes, output_bytes, started.elapsed().as_secs_f64(), requantized, &reports);
    if args.json {
        print_json(&report)
    } else {
        print_human(&report);
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &Args,
    preset: Preset,
    threads: usize,
    input_bytes: u64,
    output_bytes: u64,
    seconds: f64,
    requantized_from: Vec<String>,
    reports: &[TensorReport],
) -> Report {
    let mut by_type: BTreeMap<String, (usize, u64, u64, f64, Option<ErrorStats>)> = BTreeMap::new();
    for r in reports {
        let e = by_type.entry(r.target.name().to_string()).or_insert((0, 0, 0, 0.0, None));
        e.0 += 1;
        e.1 += r.dims.iter().product::<u64>();
        e.2 += r.bytes;
        e.3 += r.seconds;
        if let Some(s) = &r.stats {
            e.4.get_or_insert_with(ErrorStats::default).merge(s);
        }
    }
    let types = by_type
        .into_iter()
        .map(|(ty, (tensors, elements, bytes, secs, stats))| {
            let [rmse, relative_rmse, sqnr_db, max_abs_error, cosine] = stats_fields(stats.as_ref());
            let summary = TypeSummary {
                tensors,
                elements,
                bytes,
                bits_per_weight: bytes as f64 * 8.0 / elements.max(1) as f64,
                seconds: secs,
                rmse,
                relative_rmse,
                sqnr_db,
                max_abs_error,
                cosine,
            };
            (ty, summary)
        })
        .collect();
    let elements: u64 = reports.iter().map(|r| r.dims.iter().product::<u64>()).sum();
    let tensor_bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let tensors = reports
        .iter()
        .map(|r| {
            let [rmse, relative_rmse, sqnr_db, max_abs_error, cosine] = stats_fields(r.stats.as_ref());
            TensorJson {
                name: r.name.clone(),
                dims: r.dims.clone(),
                source: r.source.name().into(),
                target: r.target.name().into(),
                fell_back_from: r.fell_back_from.map(|t| t.name().to_string()),
                bytes: r.bytes,
                seconds: r.seconds,
                used_importance: r.used_importance,
                rmse,
                relative_rmse,
                sqnr_db,
                max_abs_error,
                cosine,
            }
        })
        .collect();
    Report {
        input: args.input.display().to_string(),
        output: args.output.display().to_string(),
        preset: preset.name().into(),
        threads,
        input_bytes,
        output_bytes,
        elements,
        bits_per_weight: tensor_bytes as f64 * 8.0 / elements.max(1) as f64,
        seconds,
        requantized_from,
        fell_back: reports
            .iter()
            .filter_map(|r| r.fell_back_from.map(|f| format!("{}: {} -> {}", r.name, f, r.target)))
            .collect(),
        types,
        tensors,
    }
}

fn print_human(r: &Report) {
    println!(
        "{} -> {} ({}, {} threads)",
        r.input, r.output, r.preset, r.threads
    );
    println!(
        "  size {} -> {} ({:.3} bits per weight over {} elements) in {:.2} s",
        human_bytes(r.input_bytes),
        human_bytes(r.output_bytes),
        r.bits_per_weight,
        r.elements,
        r.seconds
    );
    println!("  {:<8} {:>7} {:>12} {:>10} {:>7} {:>8} {:>11} {:>9} {:>9}", "type", "tensors", "elements", "size", "bpw", "time s", "rel. RMSE", "SQNR dB", "cosine");
    for (ty, s) in &r.types {
        let f = |x: Option<f64>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
        println!(
            "  {:<8} {:>7} {:>12} {:>10} {:>7.3} {:>8.2} {:>11} {:>9} {:>9}",
            ty,
            s.tensors,
            s.elements,
            human_bytes(s.bytes),
            s.bits_per_weight,
            s.seconds,
            f(s.relative_rmse, 5),
            f(s.sqnr_db, 2),
            f(s.cosine, 6)
        );
    }
    if !r.fell_back.is_empty() {
        println!(
            "  {} tensors have rows that do not split into their type's blocks and fell back (docs/QUANT_MIXES.md):",
            r.fell_back.len()
        );
        // "blk.7.attn_q.weight: Q4_K -> IQ4_NL" grouped as "blk.*.attn_q.weight (30x): Q4_K -> IQ4_NL".
        let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
        for f in &r.fell_back {
            let (name, change) = f.split_once(": ").unwrap_or((f, ""));
            let pattern = match name.strip_prefix("blk.").and_then(|rest| rest.split_once('.')) {
                Some((_, tail)) => format!("blk.*.{tail}"),
                None => name.to_string(),
            };
            *groups.entry((pattern, change.to_string())).or_default() += 1;
        }
        for ((pattern, change), n) in groups {
            println!("    {pattern} ({n}x): {change}");
        }
    }
}

/// Bytes of the weight files in a folder (what the user downloaded).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
