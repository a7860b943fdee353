//! `lowbit perplexity --model M --file TEXT`: perplexity over a text file the way llama-perplexity
//! computes it, optionally saving this model's log-probabilities (`--save-logits`) or comparing
//! against saved ones (`--kld-base`: KL divergence, top-1 agreement, Δp).

use crate::output::print_json;
use anyhow::{bail, Context, Result};
use lowbit_engine::eval::{evaluate, Estimate, EvalOptions, EvalReport, Percentiles};
use lowbit_engine::Model;
use super::calib_args::{CalibArgs, MethodArgs};
use super::model_file::{set_threads, ActivationsArg, ModelFile};
use lowbit_calib::inmemory::{quantize_loaded, InMemoryReport, InMemoryTarget};
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
    /// Quantize the model in memory first: a GGUF type or mix (Q4_K_M, IQ4_XS, …) or an affine
    /// layout (int4-g128, int3-g64-sym, int8-ch), with --method (and --calib for gptq/awq).
    #[arg(long)]
    quantize: Option<String>,
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
    let tok = super::generate::Tokenizer::load(&mf.file)?;
    let quantized = match &args.quantize {
        Some(t) => Some(quantize_in_memory(&args, t, &mut model, &mf)?),
        None => None,
    };
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
        if let Some(q) = &quantized {
            v["quantized"] = serde_json::to_value(q)?;
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
    let method = method_by_name(&args.method.method, &args.method.options())
        .map_err(anyhow::Error::msg)?;
    let windows = match &args.calib.calib {
        Some(p) => {
            if lowbit_files::same_file(p, &args.file) {
                bail!(
                    "--calib {} is the text being evaluated: calibrate on other text (e.g. WikiText-2 valid)",
                    p.display()
                );
            }
            let tok = lowbit_engine::tokenizer::Tokenizer::from_gguf(&mf.file)
                .context("cannot build the model's tokenizer")?;
            Some(CalibWindows::from_file(
                p,
                &tok,
                args.calib.calib_ctx as usize,
                Some(args.calib.calib_chunks as usize),
            )?)
        }
        None => None,
    };
    let bar = crate::progress::bar(model.config.n_layer as u64 + 1, args.json, "quantize");
    // On a thread of the global pool (sized by --threads), so parallel steps fork cheaply.
    let r = rayon::scope(|_| {
        quantize_loaded(
            model,
            &mf.file,
            &target,
            method.as_ref(),
            windows.as_ref(),
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
