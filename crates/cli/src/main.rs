//! The `lowbit` command line. Only argument parsing, progress and output formatting live here;
//! the work is done by the library crates.

mod cmd;
mod output;
mod progress;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lowbit",
    version,
    about = "Quantize models and measure what it costs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's architecture, hyper-parameters, tokenizer and tensors.
    Inspect(cmd::inspect::Args),
    /// Quantize a GGUF file or a Hugging Face folder to a GGUF file (rtn, gptq, awq, hqq).
    Quantize(cmd::quantize::Args),
    /// Expand every tensor of a GGUF file to F32, F16 or BF16.
    Dequantize(cmd::dequantize::Args),
    /// Collect an importance matrix from calibration text (llama.cpp's GGUF imatrix format).
    Imatrix(cmd::imatrix::Args),
    /// Measure the error of every tensor of a model against a reference model.
    Compare(cmd::compare::Args),
    /// Write a GGUF model as a Hugging Face folder (safetensors, config.json, tokenizer).
    ExportHf(cmd::export_hf::Args),
    /// Sentence embeddings with a BERT encoder, or their cosine to a second (e.g. quantized) model.
    Embed(cmd::embed::Args),
    /// Perplexity of a model over a text file (and KL divergence against a base model's log-probabilities).
    Perplexity(cmd::perplexity::Args),
    /// Generate text from a prompt, streaming tokens.
    Generate(cmd::generate::Args),
    /// For each size budget, every method's best file, measured, with the Pareto front and an HTML report.
    Recipe(cmd::recipe::Args),
    /// Prompt and generation throughput (like llama-bench), several models side by side.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Ctrl-C or a kill mid-run: delete the temporary output, then exit as interrupted.
    let _ = ctrlc::set_handler(|| {
        lowbit_files::remove_unfinished_outputs();
        eprintln!("\ninterrupted: no output was written");
        std::process::exit(130);
    });
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Dequantize(a) => cmd::dequantize::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Imatrix(a) => cmd::imatrix::run(a),
        Command::ExportHf(a) => cmd::export_hf::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Perplexity(a) => cmd::perplexity::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Recipe(a) => cmd::recipe::run_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
