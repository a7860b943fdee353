//! `lowbit export-hf model.gguf out_dir`: a GGUF model as a Hugging Face folder (safetensors,
//! config.json, tokenizer files), e.g. to fine-tune or evaluate it with the HF stack.

use crate::output::{human_bytes, print_json};
use anyhow::{bail, Context, Result};
use lowbit_convert::{export_hf, ExportDtype};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Input GGUF file (quantized tensors are dequantized).
    input: PathBuf,
    /// Output folder; must not exist or be empty. Written beside it, then renamed into place.
    output: PathBuf,
    /// Safetensors dtype: F32 keeps dequantized values exactly; BF16 halves the size.
    #[arg(long = "dtype", default_value = "F32")]
    dtype: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let dtype = match args.dtype.to_ascii_uppercase().as_str() {
        "F32" => ExportDtype::F32,
        "BF16" => ExportDtype::Bf16,
        other => bail!("--dtype {other:?}: expected F32 or BF16"),
    };
    let s = export_hf(&args.input, &args.output, dtype)
        .with_context(|| format!("cannot export {} to {}", args.input.display(), args.output.display()))?;
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        return print_json(&json!({
            "input": args.input.display().to_string(),
            "output": args.output.display().to_string(),
            "architecture": s.arch.gguf_name(),
            "tensors": s.tensors,
            "dequantized": s.dequantized.len(),
            "dropped": s.dropped,
            "safetensors_bytes": s.safetensors_bytes,
            "seconds": secs,
        }));
    }
    println!(
        "{} -> {} ({}, {} tensors, {} dequantized, {} of safetensors) in {:.2} s",
        args.input.display(),
        args.output.display(),
        s.arch.gguf_name(),
        s.tensors,
        s.dequantized.len(),
        human_bytes(s.safetensors_bytes),
        secs
    );
    if !s.dropped.is_empty() {
        println!("  folded into config.json: {}", s.dropped.join(", "));
    }
    Ok(())
}
