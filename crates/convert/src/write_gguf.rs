//! HF folder → unquantized GGUF, following a [`ConversionPlan`]. The quantizing pipeline does
//! the same walk with its own tensor types; this is the reference path (and what the round-trip
//! tests use).

use crate::error::Result;
use crate::hf_dir::HfFolder;
use crate::plan::ConversionPlan;
use crate::value::MetaValue;
use lowbit_files::{GgufWriter, TensorSpec};
use lowbit_formats::GgmlType;
use std::path::Path;

/// llama.cpp's `LLAMA_FTYPE_ALL_F32`.
const FTYPE_ALL_F32: u32 = 0;

/// Writes every tensor as F32.
pub fn write_gguf_f32(
    folder: &HfFolder,
    plan: &ConversionPlan,
    out: impl AsRef<Path>,
) -> Result<()> {
    let mut md = plan.metadata.clone();
    md.set("general.file_type", MetaValue::U32(FTYPE_ALL_F32));
    let mut specs: Vec<TensorSpec> = plan
        .tensors
        .iter()
        .map(|t| TensorSpec::new(t.gguf_name.clone(), &t.gguf_dims, GgmlType::F32))
        .collect();
    specs.extend(
        plan.generated
            .iter()
            .map(|g| TensorSpec::new(g.gguf_name.clone(), &g.gguf_dims, GgmlType::F32)),
    );
    let mut w = GgufWriter::create(out, md.to_gguf(), specs)?;
    let mut values = Vec::new();
    let mut bytes = Vec::new();
    for t in &plan.tensors {
        folder.read_f32(&t.hf_name, &mut values)?;
        t.apply(&mut values)?;
        bytes.clear();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        w.write_tensor(&t.gguf_name, &bytes)?;
    }
    for g in &plan.generated {
        bytes.clear();
        bytes.extend(g.data.iter().flat_map(|v| v.to_le_bytes()));
        w.write_tensor(&g.gguf_name, &bytes)?;
    }
    w.finish()?;
    Ok(())
}
