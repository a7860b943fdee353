//! `lowbit perplexity --model M --file TEXT`: perplexity over a text file the way llama-perplexity
//! computes it, optionally saving this model's log-probabilities (`--save-logits`) or comparing
//! against saved ones (`--kld-base`: KL divergence, top-1 agreement, Δp).

use crate::output::print_json;
use anyhow::{bail, Context, Result};
use lowbit_engine::eval::{evaluate, Estimate, EvalOptions, EvalReport, Percentiles};
use lowbit_engine::Model;
use super::calib_args::{CalibArgs, MethodArgs};
use super::model_file::{set_threads, ActivationsArg, ModelFile};
use lowbit_calib::act_quant::{apply as apply_activations, ActScheme};
use lowbit_calib::inmemory::{quantize_loaded, InMemoryReport, InMemoryTarget};
use lowbit_calib::observers::{Granularity, ObserverKind};
use lowbit_calib::sequential::DriverEvent;
use lowbit_calib::CalibWindows;
use lowbit_formats::grid::AffineRow;
use lowbit_quant::methods::method_by_name;
use lowbit_quant::{PlanOptions, Preset};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The model: a GGUF file or a Hugging Face folder.
    #[arg(long)]
    model: PathBuf,
    /// The text to evaluate (e.g. WikiText-2 test).
    #[arg(long)]
    file: PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write this model's log-probabilities, the base for a later `--kld-base` run.
    #[arg(long, conflicts_with = "kld_base")]
    save_logits: Option<PathBuf>,
    /// Compare against log-probabilities saved by `--save-logits`.
    #[arg(long)]
    kld_base: Option<PathBuf>,
    /// Token ids (as printed by `llama-tokenize --ids`) to use instead of tokenizing FILE.
    #[arg(long, hide = true)]
    token_ids: Option<PathBuf>,
    /// How activations meet quantized weights (`q8` computes as llama.cpp does).
    #[arg(long, value_enum, default_value_t)]
    activations: ActivationsArg,
    /// W8A8: round activations and multiply in f32 (fake quantization) instead of the int8 ×
    /// int8 products — the same activation codes; a folder's weights are then read as
    /// transformers dequantizes them (rounded to its scale dtype). Slower; to compare.
    #[arg(long)]
    fake_quant: bool,
    /// Quantize the model in memory first: a GGUF type or mix (Q4_K_M, IQ4_XS, …), an affine
    /// layout (int4-g128, int3-g64-sym, int8-ch), with --method (and --calib for gptq/awq), or
    /// `w8a8` (int8 weights per channel + static int8 activations from --calib and --observer)
    /// or `w8a8-dynamic` (int8 activations per token).
    #[arg(long)]
    quantize: Option<String>,
    /// How `w8a8` chooses each site's activation range: minmax, ema, percentile[:P], mse, entropy.
    #[arg(long, default_value = "minmax")]
    observer: String,
    /// `w8a8`: one activation range per input channel (minmax) instead of one per tensor.
    #[arg(long)]
    act_per_channel: bool,
    /// `w8a8`: asymmetric activation ranges (with a zero point) instead of symmetric.
    #[arg(long)]
    act_asym: bool,
    /// `w8a8*`: SmoothQuant with this migration strength α (e.g. 0.5) before the weights are
    /// rounded: needs --calib.
    #[arg(long)]
    smoothquant: Option<f32>,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    calib: CalibArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    set_threads(args.threads)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if text.trim().is_empty() {
        bail!("{} is empty: nothing to evaluate", args.file.display());
    }
    let mf = ModelFile::open(&args.model)?;
    let mut model =
        Model::load(&mf.file).with_context(|| format!("cannot load {}", args.model.display()))?;
    super::model_file::apply_folder_activations(&mf, &mut model, !args.fake_quant)?;
    let tok = super::generate::Tokenizer::load(&mf.file)?;
    let scheme = match args.quantize.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("w8a8") => Some(ActScheme::Static {
            observer: ObserverKind::parse(&args.observer).map_err(|e| anyhow::anyhow!("--observer: {e}"))?,
            granularity: if args.act_per_channel { Granularity::Channel } else { Granularity::Tensor },
            symmetric: !args.act_asym,
        }),
        Some("w8a8-dynamic") => Some(ActScheme::Dynamic),
        _ => None,
    };
    if let Some(a) = args.smoothquant {
        if scheme.is_none() {
            bail!("--smoothquant applies to --quantize w8a8 or w8a8-dynamic");
        }
        if !(0.0..=1.0).contains(&a) {
            bail!("--smoothquant {a}: α must lie in [0, 1]");
        }
        if args.method.method != "rtn" {
            bail!("--smoothquant rounds the smoothed weights to nearest: give it without --method {}", args.method.method);
        }
    }
    let windows = calib_windows(&args, &mf)?;
    if let (Some(ActScheme::Static { observer, .. }), None) = (scheme, &windows) {
        bail!(
            "--quantize w8a8 fixes activation ranges from calibration (observer {}): give --calib FILE, or use w8a8-dynamic",
            observer.name()
        );
    }
    let quantized = match (&args.quantize, scheme) {
        (Some(_), Some(_)) => Some(quantize_in_memory(&args, "int8-ch-sym", &mut model, &mf, windows.as_ref())?),
        (Some(t), None) => Some(quantize_in_memory(&args, t, &mut model, &mf, windows.as_ref())?),
        _ => None,
    };
    // Activation ranges are observed on the model as it will run: weights rounded, SmoothQuant's
    // scales folded in.
    let act_report = match scheme {
        Some(s) => {
            let bar = crate::progress::bar(0, args.json, "observe");
            let r = rayon::scope(|_| {
                apply_activations(&mut model, windows.as_ref(), s, &mut |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                })
            });
            bar.finish_and_clear();
            Some(r?)
        }
        None => None,
    };
    if let (Some(q), Some(_), false) = (&quantized, scheme, args.fake_quant) {
        lowbit_calib::int8_weights::install(&mut model, lowbit_calib::int8_weights::from_outcomes(&q.outcomes))?;
    }
    model.matmul = args.activations.options();
    let tokens = match &args.token_ids {
        Some(p) => read_token_ids(p)?,
        None => tok.encode(&text, true)?,
    };
    let opts = EvalOptions {
        n_ctx: args.ctx,
        max_chunks: args.chunks,
        bos: tok.bos_to_add(),
    };
    let pb = crate::progress::bar(0, args.json, "perplexity");
    let mut progress = |r: &lowbit_engine::eval::ChunkReport| {
        pb.set_length(r.n_chunk as u64);
        pb.set_position(r.chunk as u64);
        let mut msg = format!("PPL {:.4}", r.ppl.value);
        if let (Some(k), Some(t)) = (r.kld, r.same_top) {
            msg.push_str(&format!(
                " KLD {:.5} top-1 {:.2}%",
                k.value,
                100.0 * t.value
            ));
        }
        pb.set_message(msg);
    };
    let report = evaluate(
        &model,
        &tokens,
        &opts,
        args.save_logits.as_deref(),
        args.kld_base.as_deref(),
        &mut progress,
    )?;
    pb.finish_and_clear();
    if args.json {
        let mut v = to_json(&args, &report);
        v["int8_linears"] = json!(model.int8_linears());
        if let Some(q) = &quantized {
            v["quantized"] = serde_json::to_value(q)?;
        }
        if let Some(a) = &act_report {
            v["activations"] = serde_json::to_value(a)?;
        }
        print_json(&v)
    } else {
        if let Some(q) = &quantized {
            println!(
                "quantized in memory to {} with {}: {:.3} bits per weight over {} matrix elements ({:.1} s)",
                args.quantize.as_deref().unwrap_or(""),
                q.method,
                q.bits_per_weight,
                q.matrix_elements,
                q.seconds
            );
        }
        if let Some(a) = &act_report {
            match a.scheme {
                ActScheme::Dynamic => println!("activations: int8 per token, dynamic"),
                ActScheme::Static { observer, granularity, symmetric } => println!(
                    "activations: static int8 ({}, {granularity:?}, {}) from {} windows: mean clip ratio {:.3}, mean relative round-trip error {:.2e} over {} sites",
                    observer.name(),
                    if symmetric { "symmetric" } else { "asymmetric" },
                    a.windows,
                    a.mean_clip_ratio,
                    a.mean_relative_error,
                    a.sites.len()
                ),
            }
        }
        print_human(&args, &report);
        Ok(())
    }
}

/// `--quantize`: the model's matrices quantized in place before the evaluation.
fn quantize_in_memory(
    args: &Args,
    target: &str,
    model: &mut Model,
    mf: &ModelFile,
    windows: Option<&CalibWindows>,
) -> Result<InMemoryReport> {
    let target = match AffineRow::parse(target) {
        Some(a) => InMemoryTarget::Affine(a),
        None => InMemoryTarget::Plan(PlanOptions {
            preset: Preset::parse(target).with_context(|| {
                format!(
                    "--quantize {target:?}: expected a GGUF type or mix ({}) or an affine layout                      such as int4-g128",
                    Preset::names().join(", ")
                )
            })?,
            pure: false,
            overrides: Vec::new(),
        }),
    };
    let mut options = args.method.options();
    let name = match args.smoothquant {
        Some(a) => {
            options.smoothquant.alpha = a;
            "smoothquant"
        }
        None => args.method.method.as_str(),
    };
    let method = method_by_name(name, &options).map_err(anyhow::Error::msg)?;
    let bar = crate::progress::bar(model.config.n_layer as u64 + 1, args.json, "quantize");
    // On a thread of the global pool (sized by --threads), so parallel steps fork cheaply.
    let r = rayon::scope(|_| {
        quantize_loaded(
            model,
            &mf.file,
            &target,
            method.as_ref(),
            windows,
            args.calib.sequential(),
            &mut |e| match e {
                DriverEvent::Layer { layer, stage, .. } => {
                    bar.set_position(layer as u64);
                    bar.set_message(format!("layer {layer} ({stage})"));
                }
            },
        )
    });
    bar.finish_and_clear();
    Ok(r?)
}

/// `--calib`'s windows (only when something quantizes), refusing the text being evaluated.
fn calib_windows(args: &Args, mf: &ModelFile) -> Result<Option<CalibWindows>> {
    let (Some(p), Some(_)) = (&args.calib.calib, &args.quantize) else { return Ok(None) };
    if lowbit_files::same_file(p, &args.file) {
        bail!(
            "--calib {} is the text being evaluated: calibrate on other text (e.g. WikiText-2 valid)",
            p.display()
        );
    }
    let tok = lowbit_engine::tokenizer::Tokenizer::from_gguf(&mf.file)
        .context("cannot build the model's tokenizer")?;
    Ok(Some(CalibWindows::from_file(
        p,
        &tok,
        args.calib.calib_ctx as usize,
        Some(args.calib.calib_chunks as usize),
    )?))
}

fn read_token_ids(p: &Path) -> Result<Vec<u32>> {
    let s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.parse::<u32>()
                .with_context(|| format!("bad token id {w}"))
        })
        .collect()
}

fn est(e: Estimate) -> Value {
    json!({ "value": e.value, "err": e.err })
}

fn pct(p: &Percentiles) -> Value {
    json!({
        "max": p.max, "99.9": p.p99_9, "99": p.p99, "95": p.p95, "90": p.p90, "median": p.median,
        "10": p.p10, "5": p.p5, "1": p.p1, "0.1": p.p0_1, "min": p.min,
    })
}

fn to_json(args: &Args, r: &EvalReport) -> Value {
    let mut v = json!({
        "model": args.model.display().to_string(),
        "file": args.file.display().to_string(),
        "ctx": r.n_ctx,
        "chunks": r.n_chunk,
        "scored_tokens": r.count,
        "ppl": est(r.ppl),
    });
    if let Some(k) = &r.kld {
        v["kld"] = json!({
            "ppl_base": est(k.ppl_base),
            "ln_ppl_correlation": k.ln_ppl_correlation,
            "ln_ppl_ratio": est(k.ln_ppl_ratio),
            "ppl_ratio": est(k.ppl_ratio),
            "ppl_diff": est(k.ppl_diff),
            "mean_kld": est(k.kld),
            "kld_percentiles": pct(&k.kld_percentiles),
            "mean_p_diff": est(k.p_diff),
            "rms_p_diff": est(k.rms_p_diff),
            "p_diff_percentiles": pct(&k.p_diff_percentiles),
            "same_top": est(k.same_top),
        });
    }
    v
}

fn print_human(args: &Args, r: &EvalReport) {
    println!(
        "{}: {} chunks of {} tokens, {} tokens scored",
        args.model.display(),
        r.n_chunk,
        r.n_ctx,
        r.count
    );
    if let Some(p) = &args.save_logits {
        println!("log-probabilities saved to {}", p.display());
    }
    println!("PPL = {:.4} +/- {:.5}", r.ppl.value, r.ppl.err);
    let Some(k) = &r.kld else { return };
    println!();
    println!(
        "Mean PPL(Q)                   : {:10.6} ± {:10.6}",
        k.ppl.value, k.ppl.err
    );
    println!(
        "Mean PPL(base)                : {:10.6} ± {:10.6}",
        k.ppl_base.value, k.ppl_base.err
    );
    println!(
        "Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%",
        100.0 * k.ln_ppl_correlation
    );
    println!(
        "Mean ln(PPL(Q)/PPL(base))     : {:10.6} ± {:10.6}",
        k.ln_ppl_ratio.value, k.ln_ppl_ratio.err
    );
    println!(
        "Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}",
        k.ppl_ratio.value, k.ppl_ratio.err
    );
    println!(
        "Mean PPL(Q)-PPL(base)         : {:10.6} ± {:10.6}",
        k.ppl_diff.value, k.ppl_diff.err
    );
    println!();
    println!("Mean    KLD: {:10.6} ± {:10.6}", k.kld.value, k.kld.err);
    let p = &k.kld_percentiles;
    for (name, v) in [
        ("Maximum", p.max),
        ("99.9%  ", p.p99_9),
        ("99.0%  ", p.p99),
        ("95.0%  ", p.p95),
        ("90.0%  ", p.p90),
        ("Median ", p.median),
        ("10.0%  ", p.p10),
        (" 5.0%  ", p.p5),
        (" 1.0%  ", p.p1),
        (" 0.1%  ", p.p0_1),
        ("Minimum", p.min),
    ] {
        println!("{name} KLD: {v:10.6}");
    }
    println!();
    println!(
        "Mean    Δp: {:6.3} ± {:5.3} %",
        100.0 * k.p_diff.value,
        100.0 * k.p_diff.err
    );
    println!(
        "RMS Δp    : {:6.3} ± {:5.3} %",
        100.0 * k.rms_p_diff.value,
        100.0 * k.rms_p_diff.err
    );
    println!(
        "Same top p: {:6.3} ± {:5.3} %",
        100.0 * k.same_top.value,
        100.0 * k.same_top.err
    );
}
