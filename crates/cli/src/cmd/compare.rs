//! `lowbit compare REF OTHER`: the error of every tensor of OTHER against REF, grouped by OTHER's
//! type (the algorithm is `lowbit_quant::compare`; this file parses and prints).

use crate::output::print_json;
use anyhow::{Context, Result};
use lowbit_files::gguf::GgufFile;
use lowbit_files::imatrix::Imatrix;
use lowbit_quant::compare::compare;
use lowbit_quant::sources::gguf::GgufSource;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The reference model (usually F32).
    reference: PathBuf,
    /// The model to measure.
    other: PathBuf,
    /// Weight each column's error by this importance matrix (llama.cpp's imatrix): the error that
    /// reaches the model's outputs, which is what an imatrix-guided quantizer minimises.
    #[arg(long)]
    imatrix: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let a = GgufFile::open(&args.reference)
        .with_context(|| format!("cannot read {}", args.reference.display()))?;
    let b = GgufFile::open(&args.other)
        .with_context(|| format!("cannot read {}", args.other.display()))?;
    let (sa, sb) = (GgufSource::new(&a), GgufSource::new(&b));
    let imatrix = match &args.imatrix {
        Some(p) => Some(Imatrix::load(p).context("cannot read the importance matrix")?),
        None => None,
    };
    let importance = |name: &str| imatrix.as_ref().and_then(|m| m.get(name)).map(<[f32]>::to_vec);
    let c = compare(&sa, &sb, &importance).map_err(|e| {
        anyhow::anyhow!("{} vs {}: {e}", args.other.display(), args.reference.display())
    })?;
    if args.json {
        let types: serde_json::Map<String, serde_json::Value> = c
            .types
            .iter()
            .map(|(t, (n, s))| (t.clone(), json!({"tensors": n, "rmse": s.rmse(), "relative_rmse": s.relative_rmse(), "sqnr_db": s.sqnr_db(), "max_abs_error": s.max_abs_err, "cosine": s.cosine()})))
            .collect();
        let tensors: Vec<serde_json::Value> = c
            .tensors
            .iter()
            .map(|t| json!({"name": t.name, "type": t.ty, "rmse": t.stats.rmse(), "relative_rmse": t.stats.relative_rmse(), "sqnr_db": t.stats.sqnr_db(), "cosine": t.stats.cosine()}))
            .collect();
        return print_json(&json!({
            "reference": args.reference.display().to_string(),
            "other": args.other.display().to_string(),
            "weighted_by_imatrix": args.imatrix.is_some(),
            "rmse": c.total.rmse(), "relative_rmse": c.total.relative_rmse(), "sqnr_db": c.total.sqnr_db(),
            "types": types,
            "tensors": tensors,
        }));
    }
    println!("{} vs {}", args.other.display(), args.reference.display());
    println!(
        "  {:<8} {:>7} {:>12} {:>11} {:>9} {:>10}",
        "type", "tensors", "RMSE", "rel. RMSE", "SQNR dB", "cosine"
    );
    for (t, (n, s)) in &c.types {
        println!(
            "  {t:<8} {n:>7} {:>12.6e} {:>11.6} {:>9.3} {:>10.7}",
            s.rmse(),
            s.relative_rmse(),
            s.sqnr_db(),
            s.cosine()
        );
    }
    let total = &c.total;
    println!(
        "  {:<8} {:>7} {:>12.6e} {:>11.6} {:>9.3} {:>10.7}",
        "all",
        c.tensors.len(),
        total.rmse(),
        total.relative_rmse(),
        total.sqnr_db(),
        total.cosine()
    );
    Ok(())
}
