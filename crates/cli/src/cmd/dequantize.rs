//! `lowbit dequantize IN OUT --type F32`: every tensor expanded to a float type.

use crate::output::{human_bytes, print_json};
use crate::progress;
use anyhow::{bail, Context, Result};
use lowbit_files::gguf::{GgufWriter, TensorSpec, Value};
use lowbit_quant::sources::model_file::ModelFile;
use lowbit_files::same_file;
use lowbit_formats::GgmlType;
use lowbit_quant::pipeline::{self, Progress, SourceModel};
use lowbit_quant::sources::gguf::GgufSource;
use lowbit_quant::TensorPlan;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Input: a GGUF file or a Hugging Face folder (a compressed-tensors checkpoint is dequantized).
    input: PathBuf,
    /// Output GGUF file.
    output: PathBuf,
    /// F32, F16 or BF16.
    #[arg(long = "type", short = 't', default_value = "F32")]
    ty: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let target = match GgmlType::from_name(&args.ty) {
        Some(t @ (GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)) => t,
        _ => bail!("--type {:?}: dequantize writes F32, F16 or BF16", args.ty),
    };
    if same_file(&args.input, &args.output) {
        bail!("refusing to overwrite the input {}", args.input.display());
    }
    // A GGUF file, or an HF folder (a compressed-tensors checkpoint reads as its dequantized
    // weights): what lowbit's engine runs, as a float GGUF.
    let mf = ModelFile::open(&args.input)?;
    let file = &mf.file;
    let source = GgufSource::new(file);
    // Integer tensors and 1-D float tensors keep their type; everything quantized becomes `target`.
    let plans: Vec<TensorPlan> = source
        .tensors()
        .iter()
        .map(|d| {
            let keep = d.source.is_integer()
                || (d.source.block_elems() == 1 && d.dims.len() < 2)
                || d.source == target;
            let t = if keep { d.source } else { target };
            TensorPlan {
                name: d.name.clone(),
                target: t,
                fell_back_from: None,
                keep,
            }
        })
        .collect();
    let specs = source
        .tensors()
        .iter()
        .zip(&plans)
        .map(|(d, p)| TensorSpec::new(d.name.clone(), &d.dims, p.target))
        .collect();
    let mut metadata: Vec<(String, Value)> = file.metadata().to_vec();
    let ft = match target {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        _ => 32,
    };
    match metadata.iter_mut().find(|(k, _)| k == "general.file_type") {
        Some(slot) => slot.1 = Value::U32(ft),
        None => metadata.push(("general.file_type".into(), Value::U32(ft))),
    }
    let mut writer = GgufWriter::create(&args.output, metadata, specs)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let total = file.total_elements();
    let bar = progress::bar(total, args.json, "dequantize");
    let mut done = 0u64;
    let reports = pool.install(|| {
        pipeline::run(&source, &plans, &lowbit_quant::methods::rtn::Rtn, None, &mut writer, &mut |p| match p {
            Progress::Tensor { name, elements, .. } => {
                bar.set_position(done);
                bar.set_message(name.to_string());
                done += elements;
            }
        })
    });
    bar.finish_and_clear();
    reports?;
    writer
        .finish()
        .with_context(|| format!("cannot finish {}", args.output.display()))?;
    let out_bytes = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        return print_json(&json!({
            "input": args.input.display().to_string(),
            "output": args.output.display().to_string(),
            "type": target.name(),
            "tensors": plans.len(),
            "output_bytes": out_bytes,
            "seconds": secs,
        }));
    }
    println!(
        "{} -> {} ({}, {} tensors, {}) in {:.2} s",
        args.input.display(),
        args.output.display(),
        target,
        plans.len(),
        human_bytes(out_bytes),
        secs
    );
    Ok(())
}
