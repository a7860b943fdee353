//! `lowbit quantize IN OUT --type T [--method M] [--calib TEXT]`: parses the options, shows
//! progress, prints the report. The work — planning, calibration, the methods, writing the file
//! atomically — is `lowbit_calib::quantize_file`.

use super::calib_args::{CalibArgs, MethodArgs};
use crate::output::{human_bytes, print_json};
use crate::progress;
use anyhow::{bail, Context, Result};
use super::calib_args::BudgetArgs;
use lowbit_calib::budget::{quantize_to_budget, BudgetReport};
use lowbit_calib::quantize_file::{quantize_file, CalibrationSummary, Event, QuantizeSpec};
use lowbit_files::same_file;
use lowbit_formats::GgmlType;
use lowbit_quant::report::ModelSummary;
use lowbit_quant::sources::model_file::ModelFile;
use lowbit_quant::{PlanOptions, Preset};
use regex::Regex;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Input: a GGUF file or a Hugging Face model folder (safetensors + config.json + tokenizer).
    input: PathBuf,
    /// Output GGUF file (written to a temporary file, then renamed into place).
    output: PathBuf,
    /// A block type (Q8_0, Q6_K, IQ4_NL, …) or a llama.cpp mix (Q4_K_M, Q3_K_S, …); with a
    /// --target-* the allocation picks every tensor's type instead.
    #[arg(long = "type", short = 't', required_unless_present_any = ["target_size", "target_bpw", "target_kld", "target_ppl_increase", "scheme"])]
    ty: Option<String>,
    /// What OUT is: `gguf` (a file, the default) or `compressed-tensors` (a Hugging Face folder
    /// that llm-compressor writes and vLLM and transformers load; needs --scheme).
    #[arg(long, default_value = "gguf")]
    format: String,
    /// A Hugging Face checkpoint scheme: w8a8 (static int8 activations from --calib), w8a8-dynamic,
    /// w8a16, w4a16-g128 (any -gG; -asym for zero points). Implies --format compressed-tensors.
    #[arg(long, conflicts_with_all = ["ty", "target_size", "target_bpw", "target_kld", "target_ppl_increase", "imatrix", "tensor_type", "pure"])]
    scheme: Option<String>,
    /// w8a8: how each site's static activation range is chosen (minmax, ema, percentile[:P], mse,
    /// entropy).
    #[arg(long, default_value = "minmax")]
    observer: String,
    /// w8a8*: SmoothQuant with this migration strength α (e.g. 0.5), folded into the norms.
    #[arg(long)]
    smoothquant: Option<f32>,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Per-tensor override, REGEX=TYPE; repeatable, first match wins.
    #[arg(long = "tensor-type", value_name = "REGEX=TYPE")]
    tensor_type: Vec<String>,
    /// An importance matrix (`lowbit imatrix` or `llama-imatrix` output, GGUF or legacy .dat).
    /// With a `--target-*` it may come with `--calib`: the text then feeds only the sensitivity
    /// table and the held-out checks, and the file is quantized with this matrix.
    #[arg(long)]
    imatrix: Option<PathBuf>,
    /// Every matrix gets the base type: no per-role mix (fallbacks still apply).
    #[arg(long)]
    pure: bool,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    calib: CalibArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    input: String,
    output: String,
    preset: String,
    method: &'static str,
    threads: usize,
    input_bytes: u64,
    output_bytes: u64,
    seconds: f64,
    requantized_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<CalibrationSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<BudgetReport>,
    #[serde(flatten)]
    summary: ModelSummary,
}

fn parse_override(s: &str) -> Result<(Regex, GgmlType)> {
    let (re, ty) = s
        .rsplit_once('=')
        .with_context(|| format!("--tensor-type {s:?}: expected REGEX=TYPE"))?;
    let re =
        Regex::new(re).with_context(|| format!("--tensor-type {s:?}: bad regular expression"))?;
    let ty = GgmlType::from_name(ty)
        .with_context(|| format!("--tensor-type {s:?}: unknown type {ty:?}"))?;
    Ok((re, ty))
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    match (args.format.to_ascii_lowercase().as_str(), &args.scheme) {
        ("gguf", None) => {}
        ("compressed-tensors", Some(_)) | ("gguf", Some(_)) => {
            let a = &args;
            return super::quantize_hf::run(super::quantize_hf::HfArgs {
                input: &a.input,
                output: &a.output,
                scheme: a.scheme.as_deref().unwrap_or_default(),
                observer: &a.observer,
                smoothquant: a.smoothquant,
                method: &a.method,
                calib: &a.calib,
                threads: a.threads,
                json: a.json,
            });
        }
        ("compressed-tensors", None) => bail!("--format compressed-tensors needs --scheme (w8a8, w8a8-dynamic, w8a16, w4a16-g128, …)"),
        (other, _) => bail!("--format {other:?}: expected gguf or compressed-tensors"),
    }
    if args.smoothquant.is_some() {
        bail!("--smoothquant applies to --scheme w8a8 or w8a8-dynamic (or `perplexity --quantize w8a8`)");
    }
    let ty = args.ty.as_deref().unwrap_or("Q8_0");
    let preset = Preset::parse(ty).with_context(|| {
        format!(
            "unknown --type {ty:?}; expected one of: {} (affine intN layouts have no GGUF type: \
             measure them with `lowbit perplexity --quantize`)",
            Preset::names().join(", ")
        )
    })?;
    let overrides = args
        .tensor_type
        .iter()
        .map(|s| parse_override(s))
        .collect::<Result<Vec<_>>>()?;
    if same_file(&args.input, &args.output) {
        bail!(
            "refusing to overwrite the input {} with its own quantization",
            args.input.display()
        );
    }
    let spec = QuantizeSpec {
        plan: PlanOptions {
            preset,
            pure: args.pure,
            overrides,
        },
        method: args.method.method.clone(),
        method_options: args.method.options(),
        calib: args.calib.spec(),
        imatrix: args.imatrix.clone(),
        sequential: args.calib.sequential(),
        types: None,
    };
    let budget = args.budget.spec(&args.input, &args.method, &args.calib)?;
    // A budget's calibration text is the table's; a given matrix then quantizes the file.
    let spec = match (&budget, &spec.imatrix) {
        (Some(_), Some(_)) => QuantizeSpec { calib: None, ..spec },
        _ => spec,
    };
    let threads = super::model_file::threads(args.threads)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let input = ModelFile::open(&args.input)?;
    if let Some(info) = &input.converted_from {
        if !info.skipped.is_empty() && !args.json {
            eprintln!(
                "note: not converted (not part of the text model): {}",
                info.skipped.join(", ")
            );
        }
    }
    let total: u64 = input.file.total_elements();
    let bar = progress::bar(total, args.json, "quantize");
    let mut done = 0u64;
    let mut warned = false;
    let json = args.json;
    let mut on_event = |e: Event| match e {
            Event::Imatrix { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message("importance matrix");
            }
            Event::Calibrate {
                layer,
                n_layer,
                stage,
            } => {
                bar.set_length(n_layer as u64 + 1);
                bar.set_position(layer as u64);
                bar.set_message(format!("calibrating layer {layer} ({stage})"));
            }
            Event::Tensor { name, elements, .. } => {
                if !warned {
                    bar.set_length(total);
                    bar.set_position(0);
                    done = 0;
                    warned = true;
                }
                bar.set_position(done);
                bar.set_message(name.to_string());
                done += elements;
            }
            Event::Sensitivity { done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message("sensitivity table");
                warned = false;
            }
        };
    let result = pool.install(|| match &budget {
        Some(b) => quantize_to_budget(&input, &args.output, &spec, b, &mut on_event).map(|(r, b)| (r, Some(b))),
        None => quantize_file(&input, &args.output, &spec, &mut on_event).map(|r| (r, None)),
    });
    bar.finish_and_clear();
    let (result, budget_report) =
        result.with_context(|| format!("cannot quantize {}", args.input.display()))?;
    if !result.requantized.is_empty() && !json {
        eprintln!(
            "warning: {} tensors were already quantized and were dequantized first; requantizing \
             adds error on top of the original quantization",
            result.requantized.len()
        );
    }
    let output_bytes = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let report = Report {
        input: args.input.display().to_string(),
        output: args.output.display().to_string(),
        preset: result.preset.name().into(),
        method: result.method,
        threads,
        input_bytes: input.input_bytes(),
        output_bytes,
        seconds: started.elapsed().as_secs_f64(),
        requantized_from: result.requantized,
        calibration: result.calibration,
        budget: budget_report,
        summary: ModelSummary::of(&result.reports),
    };
    if args.json {
        print_json(&report)
    } else {
        print_human(&report);
        Ok(())
    }
}

fn print_human(r: &Report) {
    println!(
        "{} -> {} ({}, method {}, {} threads)",
        r.input, r.output, r.preset, r.method, r.threads
    );
    let s = &r.summary;
    println!(
        "  size {} -> {} ({:.3} bits per weight over {} elements) in {:.2} s",
        human_bytes(r.input_bytes),
        human_bytes(r.output_bytes),
        s.bits_per_weight,
        s.elements,
        r.seconds
    );
    if let Some(c) = &r.calibration {
        println!(
            "  calibration: {} windows of {} tokens from {} ({}); {:.1} s forward + {:.1} s method",
            c.windows,
            c.ctx,
            c.file,
            if c.sequential { "sequential" } else { "from the float model" },
            c.seconds_forward,
            c.seconds_methods
        );
        if !c.damping_raised.is_empty() {
            println!(
                "  damping raised (Cholesky failed at first) for: {}",
                c.damping_raised.join(", ")
            );
        }
        if !c.sites.is_empty() {
            let mean = |f: &dyn Fn(&lowbit_calib::sequential::SiteReport) -> f64| {
                c.sites.iter().map(f).sum::<f64>() / c.sites.len() as f64
            };
            println!(
                "  AWQ scales on {} sites: mean α {:.2}, output error {:.4} -> {:.4} (relative)",
                c.sites.len(),
                mean(&|s| s.alpha as f64),
                mean(&|s| s.error_before),
                mean(&|s| s.error_after)
            );
        }
    }
    if let Some(b) = &r.budget {
        println!(
            "  budget {}: {} of {} bytes used ({:.1}%); predicted KLD {:.4}, measured on {} held-out windows: KLD {:.4}, PPL ×{:.4}, top-1 {:.1}%",
            b.target,
            b.file_bytes,
            b.budget_bytes,
            100.0 * b.used,
            b.predicted_kld,
            b.held_out,
            b.measured.kld,
            b.measured.ppl_ratio,
            100.0 * b.measured.top1
        );
        println!(
            "  sensitivity table {} ({}; proxy vs measured rank correlation {:.2}, predicted vs measured at {} {:.2})",
            b.table.path,
            if b.table.cached { "cached".to_string() } else { format!("computed in {:.0} s", b.table.seconds) },
            b.table.rank_correlation,
            b.table.validation.ty,
            b.table.validation.rank_correlation
        );
        if b.attempts.len() > 1 {
            println!(
                "  verification: {} tensors checked in context; the repaired allocation measured KLD {:.4} ({})",
                b.corrections.len(),
                b.attempts[1].measured.kld,
                if b.attempts[1].measured.kld < b.attempts[0].measured.kld { "kept" } else { "not better: the first was kept" }
            );
        }
    }
    let chosen: std::collections::BTreeMap<&str, usize> =
        s.tensors.iter().filter_map(|t| t.notes.chosen).fold(Default::default(), |mut m, c| {
            *m.entry(c).or_default() += 1;
            m
        });
    if !chosen.is_empty() {
        let list: Vec<String> = chosen.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  kept per tensor: {}", list.join(", "));
    }
    println!(
        "  {:<8} {:>7} {:>12} {:>10} {:>7} {:>8} {:>11} {:>9} {:>9}",
        "type", "tensors", "elements", "size", "bpw", "time s", "rel. RMSE", "SQNR dB", "cosine"
    );
    for (ty, t) in &s.types {
        let f =
            |x: Option<f64>, p: usize| x.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
        println!(
            "  {:<8} {:>7} {:>12} {:>10} {:>7.3} {:>8.2} {:>11} {:>9} {:>9}",
            ty,
            t.tensors,
            t.elements,
            human_bytes(t.bytes),
            t.bits_per_weight,
            t.seconds,
            f(t.error.relative_rmse, 5),
            f(t.error.sqnr_db, 2),
            f(t.error.cosine, 6)
        );
    }
    if !s.fell_back.is_empty() {
        println!(
            "  {} tensors have rows that do not split into their type's blocks and fell back (docs/QUANT_MIXES.md):",
            s.fell_back.len()
        );
        for (pattern, change, n) in s.fallback_groups() {
            println!("    {pattern} ({n}x): {change}");
        }
    }
}
