//! `lowbit inspect`: what a model file holds, for people (a table) or programs (`--json`).

use crate::output::{dims_string, human_bytes, print_json};
use anyhow::Result;
use lowbit_files::gguf::{Array, GgufFile, Value};
use lowbit_convert::compressed_tensors::CtFolder;
use lowbit_files::hf::HfModel;
use lowbit_files::safetensors::SafetensorsFile;
use lowbit_quant::report::{self, TypeTally};
use serde::Serialize;
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, a .safetensors file or a Hugging Face model folder.
    path: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Leave out the per-tensor list.
    #[arg(long)]
    no_tensors: bool,
}

#[derive(Serialize)]
struct TensorRow {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    dims: Vec<u64>,
    bytes: u64,
}

#[derive(Serialize)]
struct Report {
    path: String,
    format: &'static str,
    version: Option<u32>,
    architecture: Option<String>,
    name: Option<String>,
    file_type: Option<u64>,
    file_bytes: u64,
    tensor_bytes: u64,
    elements: u64,
    bits_per_weight: f64,
    hyperparameters: Map<String, serde_json::Value>,
    tokenizer: Map<String, serde_json::Value>,
    types: BTreeMap<String, TypeTally>,
    /// A compressed-tensors folder's scheme and format (`w4a16-g128, pack-quantized`).
    #[serde(skip_serializing_if = "Option::is_none")]
    quantization: Option<String>,
    tensors: Vec<TensorRow>,
}

/// Scalars as JSON; arrays summarised (a 262k-entry vocabulary is not a hyper-parameter).
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Array(a) if a.len() > 16 => {
            json!({"array_of": a.elem_type().name(), "len": a.len()})
        }
        Value::Array(a) => array_json(a),
        Value::String(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        other => other
            .to_u64()
            .map(|u| json!(u))
            .or_else(|| other.to_f64().map(|f| json!(f)))
            .unwrap_or(json!(null)),
    }
}

fn array_json(a: &Array) -> serde_json::Value {
    match a {
        Array::String(s) => json!(s.iter().collect::<Vec<_>>()),
        Array::F32(v) => json!(v),
        Array::F64(v) => json!(v),
        Array::I32(v) => json!(v),
        Array::U32(v) => json!(v),
        Array::I64(v) => json!(v),
        Array::U64(v) => json!(v),
        Array::U8(v) => json!(v),
        Array::I8(v) => json!(v),
        Array::U16(v) => json!(v),
        Array::I16(v) => json!(v),
        Array::Bool(v) => json!(v),
        Array::Array(v) => json!(v.iter().map(array_json).collect::<Vec<_>>()),
    }
}

fn tokenizer_summary(file: &GgufFile) -> Map<String, serde_json::Value> {
    let mut m = Map::new();
    for (k, v) in file.metadata() {
        let Some(short) = k.strip_prefix("tokenizer.") else {
            continue;
        };
        let val = match (short, v) {
            ("chat_template", Value::String(s)) => json!(format!("{} chars", s.len())),
            (_, Value::Array(a)) => json!(a.len()),
            _ => value_json(v),
        };
        m.insert(short.to_string(), val);
    }
    m
}

pub fn run(args: Args) -> Result<()> {
    let report = if args.path.is_dir() {
        hf_report(&args)?
    } else if args.path.extension().is_some_and(|e| e == "safetensors") {
        safetensors_report(&args)?
    } else {
        gguf_report(&args)?
    };
    if args.json {
        return print_json(&report);
    }
    print_human(&report);
    Ok(())
}

/// Summary of a tensor list: per-type histogram, total bytes and elements.
fn tally(rows: &[TensorRow]) -> (BTreeMap<String, TypeTally>, u64, u64) {
    report::tally(rows.iter().map(|t| (t.ty.as_str(), t.dims.as_slice(), t.bytes)))
}

fn safetensors_rows(file: &SafetensorsFile) -> Vec<TensorRow> {
    file.tensors()
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            ty: t.dtype.name().to_string(),
            dims: t.shape.clone(),
            bytes: t.size,
        })
        .collect()
}

fn safetensors_report(args: &Args) -> Result<Report> {
    let file = SafetensorsFile::open(&args.path)?;
    let rows = safetensors_rows(&file);
    let (types, tensor_bytes, elements) = tally(&rows);
    Ok(Report {
        path: args.path.display().to_string(),
        format: "safetensors",
        version: None,
        architecture: None,
        name: None,
        file_type: None,
        file_bytes: std::fs::metadata(&args.path).map(|m| m.len()).unwrap_or(0),
        tensor_bytes,
        elements,
        bits_per_weight: report::bits_per_weight(tensor_bytes, elements),
        hyperparameters: Map::new(),
        tokenizer: Map::new(),
        types,
        quantization: None,
        tensors: if args.no_tensors { vec![] } else { rows },
    })
}

/// tokenizer.json: the model kind and sizes, which is what a user checks before converting.
fn hf_tokenizer_summary(model: &HfModel) -> Result<Map<String, serde_json::Value>> {
    let mut m = Map::new();
    if let Some(tok) = model.load_tokenizer_json()? {
        let kind = tok.pointer("/model/type").cloned().unwrap_or(json!(null));
        m.insert("model".into(), kind);
        if let Some(v) = tok.pointer("/model/vocab") {
            let n = v
                .as_object()
                .map(|o| o.len())
                .or_else(|| v.as_array().map(|a| a.len()))
                .unwrap_or(0);
            m.insert("vocab".into(), json!(n));
        }
        if let Some(merges) = tok.pointer("/model/merges").and_then(|v| v.as_array()) {
            m.insert("merges".into(), json!(merges.len()));
        }
        if let Some(added) = tok.get("added_tokens").and_then(|v| v.as_array()) {
            m.insert("added_tokens".into(), json!(added.len()));
        }
    }
    Ok(m)
}

fn hf_report(args: &Args) -> Result<Report> {
    let model = HfModel::open(&args.path)?;
    let mut rows = Vec::new();
    let mut file_bytes = 0;
    for shard in model.shards() {
        rows.extend(safetensors_rows(shard));
        file_bytes += std::fs::metadata(shard.path())
            .map(|m| m.len())
            .unwrap_or(0);
    }
    let (types, tensor_bytes, mut elements) = tally(&rows);
    // A quantized checkpoint counts the weights it stands for, not its packed int32 words.
    let ct = CtFolder::detect(&model)
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.dir().join("config.json").display()))?;
    if let Some(ct) = &ct {
        elements = ct.logical_tensors(&model).iter().map(|(_, s)| s.iter().product::<u64>()).sum();
    }
    let hyper: Map<String, serde_json::Value> = model
        .config()
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_object() && !v.is_array())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Report {
        path: args.path.display().to_string(),
        format: "hf",
        version: None,
        architecture: model
            .architectures()
            .first()
            .map(|s| s.to_string())
            .or_else(|| model.model_type().ok().map(str::to_string)),
        name: model
            .config()
            .get("_name_or_path")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        file_type: None,
        file_bytes,
        tensor_bytes,
        elements,
        bits_per_weight: report::bits_per_weight(tensor_bytes, elements),
        hyperparameters: hyper,
        tokenizer: hf_tokenizer_summary(&model)?,
        types,
        quantization: ct.as_ref().map(|c| format!("{}, {}", c.scheme.name(), c.scheme.format.name())),
        tensors: if args.no_tensors { vec![] } else { rows },
    })
}

fn gguf_report(args: &Args) -> Result<Report> {
    let file = GgufFile::open(&args.path)?;
    let arch = file
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let mut hyper = Map::new();
    if let Some(a) = &arch {
        let prefix = format!("{a}.");
        for (k, v) in file.metadata() {
            if let Some(short) = k.strip_prefix(&prefix) {
                hyper.insert(short.to_string(), value_json(v));
            }
        }
    }
    let tensors: Vec<TensorRow> = file
        .tensors()
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            ty: t.ty.name().into(),
            dims: t.dims.clone(),
            bytes: t.size,
        })
        .collect();
    let (types, tensor_bytes, elements) = tally(&tensors);
    Ok(Report {
        path: args.path.display().to_string(),
        format: "gguf",
        version: Some(file.version()),
        name: file
            .get("general.name")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        file_type: file.get("general.file_type").and_then(|v| v.to_u64()),
        architecture: arch,
        file_bytes: file.file_size(),
        tensor_bytes,
        elements,
        bits_per_weight: report::bits_per_weight(tensor_bytes, elements),
        hyperparameters: hyper,
        tokenizer: tokenizer_summary(&file),
        types,
        quantization: None,
        tensors: if args.no_tensors { vec![] } else { tensors },
    })
}

fn print_human(r: &Report) {
    match r.version {
        Some(v) => println!("{} (GGUF v{v})", r.path),
        None => println!("{} ({})", r.path, r.format),
    }
    println!(
        "  architecture   {}",
        r.architecture.as_deref().unwrap_or("(none)")
    );
    if let Some(n) = &r.name {
        println!("  name           {n}");
    }
    if let Some(ft) = r.file_type {
        println!("  file_type      {ft}");
    }
    if let Some(q) = &r.quantization {
        println!("  quantization   compressed-tensors {q}");
    }
    println!(
        "  size           {} in tensors ({} elements, {:.3} bits per weight), file {}",
        human_bytes(r.tensor_bytes),
        r.elements,
        r.bits_per_weight,
        human_bytes(r.file_bytes)
    );
    if !r.hyperparameters.is_empty() {
        println!("hyper-parameters");
        for (k, v) in &r.hyperparameters {
            println!("  {k:<40} {v}");
        }
    }
    if !r.tokenizer.is_empty() {
        println!("tokenizer");
        for (k, v) in &r.tokenizer {
            println!("  {k:<40} {v}");
        }
    }
    println!("types");
    for (ty, row) in &r.types {
        let bpw = row.bytes as f64 * 8.0 / row.elements.max(1) as f64;
        println!(
            "  {ty:<8} {:>5} tensors {:>12} elements {:>12}  {bpw:.3} bpw",
            row.tensors,
            row.elements,
            human_bytes(row.bytes)
        );
    }
    if !r.tensors.is_empty() {
        println!("tensors");
        for t in &r.tensors {
            println!(
                "  {:<40} {:<8} {:<20} {:>12}",
                t.name,
                t.ty,
                dims_string(&t.dims),
                human_bytes(t.bytes)
            );
        }
    }
}
