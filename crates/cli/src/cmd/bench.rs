//! `lowbit bench --model M [--model M2 …]`: prompt-processing and generation throughput measured
//! like `llama-bench` (same test names and shapes), several models in one run with ratios to the
//! first, the share of the memory-bandwidth bound that generation reaches, and peak memory.

use super::model_file::{set_threads, ActivationsArg, ModelFile};
use crate::output::{human_bytes, print_json};
use crate::progress;
use anyhow::{bail, Context, Result};
use lowbit_engine::bench::{self, Summary};
use lowbit_engine::Model;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF model or Hugging Face folder; repeat to compare several (ratios are to the first).
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Prompt tokens processed as one batch (the `pp` test; 0 skips it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 128)]
    n_prompt: usize,
    /// Tokens generated one at a time (the `tg` test; 0 skips it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 32)]
    n_gen: usize,
    /// Repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 3)]
    reps: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// How activations meet quantized weights.
    #[arg(long, value_enum, default_value_t)]
    activations: ActivationsArg,
    /// W8A8: round activations and multiply in f32 (fake quantization) instead of the int8 ×
    /// int8 products — the same activation codes; a folder's weights are then read as
    /// transformers dequantizes them (rounded to its scale dtype). Slower; to compare.
    #[arg(long)]
    fake_quant: bool,
    /// Skip the memory-bandwidth measurement (and the bound it gives generation).
    #[arg(long)]
    no_bandwidth: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct TestResult {
    /// `pp128`, `tg32`, as llama-bench names them.
    test: String,
    tokens: usize,
    /// Tokens per second of each repetition.
    runs: Vec<f64>,
    median: f64,
    min: f64,
    max: f64,
    stdev: f64,
    /// Median over the first model's median.
    ratio_to_first: Option<f64>,
    /// Generation only: median × weight bytes per token over the measured read bandwidth.
    share_of_bandwidth_bound: Option<f64>,
}

#[derive(Serialize)]
struct ModelResult {
    model: String,
    file_bytes: u64,
    weight_bytes_per_token: u64,
    parameters: u64,
    bits_per_weight: f64,
    /// Layer linears that run as int8 × int8 products (a W8A8 folder without --fake-quant).
    int8_linears: usize,
    peak_rss_bytes: Option<u64>,
    tests: Vec<TestResult>,
}

#[derive(Serialize)]
struct Report {
    threads: usize,
    activations: String,
    repetitions: usize,
    read_bandwidth_bytes_per_s: Option<f64>,
    models: Vec<ModelResult>,
}

pub fn run(args: Args) -> Result<()> {
    set_threads(args.threads)?;
    if args.reps == 0 {
        bail!("--repetitions must be at least 1");
    }
    if args.n_prompt == 0 && args.n_gen == 0 {
        bail!("nothing to measure: both -p and -n are 0");
    }
    let bandwidth = (!args.no_bandwidth).then(|| bench::read_bandwidth(1 << 30, 10));
    let mut models = Vec::new();
    for path in &args.model {
        models.push(bench_one(&args, path, bandwidth)?);
    }
    // Ratios to the first model, test by test.
    let first: Vec<(String, f64)> = models[0]
        .tests
        .iter()
        .map(|t| (t.test.clone(), t.median))
        .collect();
    for m in &mut models {
        for t in &mut m.tests {
            t.ratio_to_first = first
                .iter()
                .find(|(name, _)| *name == t.test)
                .map(|(_, base)| t.median / base);
        }
    }
    let report = Report {
        threads: rayon::current_num_threads(),
        activations: format!("{:?}", args.activations).to_lowercase(),
        repetitions: args.reps,
        read_bandwidth_bytes_per_s: bandwidth,
        models,
    };
    if args.json {
        print_json(&report)
    } else {
        print_human(&report);
        Ok(())
    }
}

fn bench_one(args: &Args, path: &Path, bandwidth: Option<f64>) -> Result<ModelResult> {
    bench::reset_peak_rss();
    let mf = ModelFile::open(path)?;
    let mut model =
        Model::load(&mf.file).with_context(|| format!("cannot load {}", path.display()))?;
    super::model_file::apply_folder_activations(&mf, &mut model, !args.fake_quant)?;
    let int8_linears = model.int8_linears();
    model.matmul = args.activations.options();
    let bytes_per_token = bench::weight_bytes_per_token(&model);
    let parameters = mf.file.total_elements();
    // A folder's size is what it holds on disk (its quantized weights), not the float GGUF the
    // engine reads it through.
    let tensor_bytes = match &mf.converted_from {
        Some(info) => info.bytes,
        None => mf.file.total_tensor_bytes(),
    };
    let label = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
    let runs = (args.n_prompt > 0) as u64 + (args.n_gen > 0) as u64;
    let pb = progress::bar(runs * (args.reps as u64 + 1), args.json, "bench");
    pb.set_message(label.clone());
    let mut tests = Vec::new();
    type Timer = fn(&Model, usize, u64) -> lowbit_engine::model::Result<f64>;
    let kinds: [(&str, usize, Timer); 2] = [
        ("pp", args.n_prompt, bench::time_prompt),
        ("tg", args.n_gen, bench::time_generation),
    ];
    for (name, n, timer) in kinds {
        if n == 0 {
            continue;
        }
        // One warm-up run: page in the weights, grow the allocator, spin up the threads.
        timer(&model, n, 0).with_context(|| format!("{} failed", path.display()))?;
        pb.inc(1);
        let mut rates = Vec::with_capacity(args.reps);
        for rep in 0..args.reps {
            let secs = timer(&model, n, rep as u64 + 1)
                .with_context(|| format!("{} failed", path.display()))?;
            rates.push(n as f64 / secs);
            pb.inc(1);
        }
        let s = Summary::of(&rates).expect("at least one repetition");
        let share = (name == "tg")
            .then(|| bandwidth.map(|bw| s.median * bytes_per_token as f64 / bw))
            .flatten();
        tests.push(TestResult {
            test: format!("{name}{n}"),
            tokens: n,
            runs: rates,
            median: s.median,
            min: s.min,
            max: s.max,
            stdev: s.stdev,
            ratio_to_first: None,
            share_of_bandwidth_bound: share,
        });
    }
    pb.finish_and_clear();
    Ok(ModelResult {
        model: path.display().to_string(),
        file_bytes: mf.input_bytes(),
        weight_bytes_per_token: bytes_per_token,
        parameters,
        bits_per_weight: 8.0 * tensor_bytes as f64 / parameters.max(1) as f64,
        int8_linears,
        peak_rss_bytes: bench::peak_rss(),
        tests,
    })
}

fn print_human(r: &Report) {
    let bw = r
        .read_bandwidth_bytes_per_s
        .map_or("not measured".to_string(), |b| format!("{:.1} GB/s", b / 1e9));
    println!(
        "{} threads, activations {}, {} repetitions; memory read bandwidth {bw}",
        r.threads, r.activations, r.repetitions
    );
    println!(
        "{:<36} {:>10} {:>6} {:>7} {:>18} {:>8} {:>9} {:>10}",
        "model", "size", "bpw", "test", "tokens/s", "× first", "of bound", "peak RSS"
    );
    for m in &r.models {
        let name = std::path::Path::new(&m.model)
            .file_name()
            .map_or(m.model.clone(), |n| n.to_string_lossy().into_owned());
        for (i, t) in m.tests.iter().enumerate() {
            let (name, size, bpw, rss) = if i == 0 {
                (
                    name.clone(),
                    human_bytes(m.file_bytes),
                    format!("{:.2}", m.bits_per_weight),
                    m.peak_rss_bytes.map_or("-".into(), human_bytes),
                )
            } else {
                Default::default()
            };
            println!(
                "{:<36} {:>10} {:>6} {:>7} {:>18} {:>8} {:>9} {:>10}",
                name,
                size,
                bpw,
                t.test,
                format!("{:.1} ± {:.1}", t.median, t.stdev),
                t.ratio_to_first.map_or("-".into(), |x| format!("{x:.2}")),
                t.share_of_bandwidth_bound
                    .map_or("".into(), |x| format!("{:.0}%", 100.0 * x)),
                rss,
            );
        }
    }
}
