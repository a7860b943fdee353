//! `lowbit compare REF OTHER`: the error of every tensor of OTHER against REF, grouped by OTHER's
//! type. This is how docs/QUALITY.md compares lowbit's quantizers with llama-quantize's: both
//! quantize the same F32 file and are measured against it by the same code.

use crate::output::print_json;
use anyhow::{bail, Context, Result};
use lowbit_files::gguf::GgufFile;
use lowbit_files::imatrix::Imatrix;
use lowbit_formats::metrics::ErrorStats;
use lowbit_quant::pipeline::SourceModel;
use lowbit_quant::sources::gguf::GgufSource;
use serde_json::json;
use std::collections::BTreeMap;
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
    let a = GgufFile::open(&args.reference).with_context(|| format!("cannot read {}", args.reference.display()))?;
    let b = GgufFile::open(&args.other).with_context(|| format!("cannot read {}", args.other.display()))?;
    let (sa, sb) = (GgufSource::new(&a), GgufSource::new(&b));
    let imatrix = match &args.imatrix {
        Some(p) => Some(Imatrix::load(p).context("cannot read the importance matrix")?),
        None => None,
    };
    let mut by_type: BTreeMap<String, (usize, ErrorStats)> = BTreeMap::new();
    let mut tensors = Vec::new();
    for (ib, tb) in sb.tensors().iter().enumerate() {
        let Some(ia) = sa.tensors().iter().position(|t| t.name == tb.name) else {
            bail!("{} has tensor {} which {} lacks", args.other.display(), tb.name, args.reference.display());
        };
        let ta = &sa.tensors()[ia];
        if ta.dims != tb.dims {
            bail!("tensor {}: shape {:?} in the reference, {:?} in the other model", tb.name, ta.dims, tb.dims);
        }
        let va = sa.values(ia).map_err(anyhow::Error::msg)?;
        let vb = sb.values(ib).map_err(anyhow::Error::msg)?;
        let mut s = ErrorStats::default();
        let row = tb.dims[0] as usize;
        match imatrix.as_ref().and_then(|m| m.get(&tb.name)).filter(|w| w.len() == row) {
            Some(w) => {
                for (ra, rb) in va.chunks_exact(row).zip(vb.chunks_exact(row)) {
                    s.add_weighted(ra, rb, w)?;
                }
            }
            None => s.add(&va, &vb)?,
        }
        tensors.push(json!({"name": tb.name, "type": tb.source.name(), "rmse": s.rmse(), "relative_rmse": s.relative_rmse(), "sqnr_db": s.sqnr_db(), "cosine": s.cosine()}));
        let e = by_type.entry(tb.source.name().to_string()).or_insert((0, ErrorStats::default()));
        e.0 += 1;
        e.1.merge(&s);
    }
    let mut total = ErrorStats::default();
    for (_, s) in by_type.values() {
        total.merge(s);
    }
    if args.json {
        let types: serde_json::Map<String, serde_json::Value> = by_type
            .iter()
            .map(|(t, (n, s))| (t.clone(), json!({"tensors": n, "rmse": s.rmse(), "relative_rmse": s.relative_rmse(), "sqnr_db": s.sqnr_db(), "max_abs_error": s.max_abs_err, "cosine": s.cosine()})))
            .collect();
        return print_json(&json!({
            "reference": args.reference.display().to_string(),
            "other": args.other.display().to_string(),
            "weighted_by_imatrix": args.imatrix.is_some(),
            "rmse": total.rmse(), "relative_rmse": total.relative_rmse(), "sqnr_db": total.sqnr_db(),
            "types": types,
            "tensors": tensors,
        }));
    }
    println!("{} vs {}", args.other.display(), args.reference.display());
    println!("  {:<8} {:>7} {:>12} {:>11} {:>9} {:>10}", "type", "tensors", "RMSE", "rel. RMSE", "SQNR dB", "cosine");
    for (t, (n, s)) in &by_type {
        println!("  {t:<8} {n:>7} {:>12.6e} {:>11.6} {:>9.3} {:>10.7}", s.rmse(), s.relative_rmse(), s.sqnr_db(), s.cosine());
    }
    println!("  {:<8} {:>7} {:>12.6e} {:>11.6} {:>9.3} {:>10.7}", "all", tensors.len(), total.rmse(), total.relative_rmse(), total.sqnr_db(), total.cosine());
    Ok(())
}
