//! `lowbit imatrix --model M --file TEXT -o imatrix.gguf`: an importance matrix in the GGUF form
//! llama.cpp reads (`llama-quantize --imatrix` takes it), collected by
//! `lowbit_calib::imatrix` over the text's windows.

use super::model_file::{set_threads, ModelFile};
use crate::output::print_json;
use crate::progress;
use anyhow::{Context, Result};
use lowbit_calib::imatrix::{collect, to_imatrix, ImatrixOptions};
use lowbit_calib::CalibWindows;
use lowbit_engine::tokenizer::Tokenizer;
use lowbit_engine::Model;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The model: a GGUF file or a Hugging Face folder.
    #[arg(long)]
    model: PathBuf,
    /// Calibration text (plain UTF-8).
    #[arg(long)]
    file: PathBuf,
    /// Output imatrix file (GGUF).
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// At most this many windows (default: all the text gives, as llama-imatrix).
    #[arg(long)]
    chunks: Option<usize>,
    /// Tokens per window.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Also collect the LM head's input (`output.weight`, when the model has one).
    #[arg(long)]
    process_output: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    set_threads(args.threads)?;
    let started = Instant::now();
    let mf = ModelFile::open(&args.model)?;
    let model =
        Model::load(&mf.file).with_context(|| format!("cannot load {}", args.model.display()))?;
    let tok = Tokenizer::from_gguf(&mf.file).context("cannot build the model's tokenizer")?;
    let windows = CalibWindows::from_file(&args.file, &tok, args.ctx, args.chunks)?;
    let bar = progress::bar(windows.len() as u64, args.json, "imatrix");
    let t = Instant::now();
    let stats = collect(
        &model,
        &windows,
        &ImatrixOptions {
            process_output: args.process_output,
        },
        &mut |done, _| bar.set_position(done as u64),
    )?;
    let seconds_forward = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let m = to_imatrix(&stats, &windows)?;
    m.save_gguf(&args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let tokens = windows.tokens();
    if args.json {
        return print_json(&json!({
            "model": args.model.display().to_string(),
            "file": args.file.display().to_string(),
            "output": args.output.display().to_string(),
            "entries": m.entries().len(),
            "chunks": windows.len(),
            "ctx": windows.n_ctx,
            "tokens": tokens,
            "seconds": started.elapsed().as_secs_f64(),
            "seconds_forward": seconds_forward,
            "tokens_per_second": tokens as f64 / seconds_forward.max(1e-9),
        }));
    }
    println!(
        "{}: {} entries from {} windows of {} tokens of {} in {:.1} s ({:.0} tokens/s)",
        args.output.display(),
        m.entries().len(),
        windows.len(),
        windows.n_ctx,
        args.file.display(),
        seconds_forward,
        tokens as f64 / seconds_forward.max(1e-9)
    );
    Ok(())
}
