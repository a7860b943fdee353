//! `lowbit inspect`: what a model file holds, for people (a table) or programs (`--json`).

use crate::output::{dims_string, human_bytes, print_json};
use anyhow::{Context, Result};
use lowbit_files::gguf::{Array, GgufFile, Value};
use serde::Serialize;
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file.
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

#[derive(Serialize, Default)]
struct TypeRow {
    tensors: usize,
    elements: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct Report {
    path: String,
    format: &'static str,
    version: u32,
    architecture: Option<String>,
    name: Option<String>,
    file_type: Option<u64>,
    file_bytes: u64,
    tensor_bytes: u64,
    elements: u64,
    bits_per_weight: f64,
    hyperparameters: Map<String, serde_json::Value>,
    tokenizer: Map<String, serde_json::Value>,
    types: BTreeMap<String, TypeRow>,
    tensors: Vec<TensorRow>,
}

/// Scalars as JSON; arrays summarised (a 262k-entry vocabulary is not a hyper-parameter).
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Array(a) if a.len() > 16 => json!({"array_of": a.elem_type().name(), "len": a.len()}),
        Value::Array(a) => array_json(a),
        Value::String(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        other => other.to_u64().map(|u| json!(u)).or_else(|| other.to_f64().map(|f| json!(f))).unwrap_or(json!(null)),
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
        let Some(short) = k.strip_prefix("tokenizer.") else { continue };
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
    let file = GgufFile::open(&args.path).with_context(|| format!("cannot inspect {}", args.path.display()))?;
    let arch = file.get("general.architecture").and_then(|v| v.as_str()).map(str::to_string);
    let mut hyper = Map::new();
    if let Some(a) = &arch {
        let prefix = format!("{a}.");
        for (k, v) in file.metadata() {
            if let Some(short) = k.strip_prefix(&prefix) {
                hyper.insert(short.to_string(), value_json(v));
            }
        }
    }
    let mut types: BTreeMap<String, TypeRow> = BTreeMap::new();
    let mut tensors = Vec::new();
    for t in file.tensors() {
        let row = types.entry(t.ty.name().to_string()).or_default();
        row.tensors += 1;
        row.elements += t.n_elements();
        row.bytes += t.size;
        tensors.push(TensorRow { name: t.name.clone(), ty: t.ty.name().into(), dims: t.dims.clone(), bytes: t.size });
    }
    let tensor_bytes = file.total_tensor_bytes();
    let elements = file.total_elements();
    let report = Report {
        path: args.path.display().to_string(),
        format: "gguf",
        version: file.version(),
        name: file.get("general.name").and_then(|v| v.as_str()).map(str::to_string),
        file_type: file.get("general.file_type").and_then(|v| v.to_u64()),
        architecture: arch,
        file_bytes: file.file_size(),
        tensor_bytes,
        elements,
        bits_per_weight: if elements == 0 { 0.0 } else { tensor_bytes as f64 * 8.0 / elements as f64 },
        hyperparameters: hyper,
        tokenizer: tokenizer_summary(&file),
        types,
        tensors: if args.no_tensors { vec![] } else { tensors },
    };
    if args.json {
        return print_json(&report);
    }
    print_human(&report);
    Ok(())
}

fn print_human(r: &Report) {
    println!("{} (GGUF v{})", r.path, r.version);
    println!("  architecture   {}", r.architecture.as_deref().unwrap_or("(none)"));
    if let Some(n) = &r.name {
        println!("  name           {n}");
    }
    if let Some(ft) = r.file_type {
        println!("  file_type      {ft}");
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
            println!("  {:<40} {:<8} {:<20} {:>12}", t.name, t.ty, dims_string(&t.dims), human_bytes(t.bytes));
        }
    }
}
