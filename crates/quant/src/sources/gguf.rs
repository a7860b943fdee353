//! A GGUF file as a quantization source: tensors straight from the memory map.

use crate::pipeline::{SourceModel, TensorSink};
use crate::plan::{ModelFacts, TensorDesc};
use lowbit_files::gguf::{GgufFile, GgufWriter, Value};
use std::borrow::Cow;

pub struct GgufSource<'a> {
    file: &'a GgufFile,
    descs: Vec<TensorDesc>,
}

impl<'a> GgufSource<'a> {
    pub fn new(file: &'a GgufFile) -> GgufSource<'a> {
        let descs = file
            .tensors()
            .iter()
            .map(|t| TensorDesc {
                name: t.name.clone(),
                dims: t.dims.clone(),
                source: t.ty,
            })
            .collect();
        GgufSource { file, descs }
    }
}

impl SourceModel for GgufSource<'_> {
    fn tensors(&self) -> &[TensorDesc] {
        &self.descs
    }

    fn raw(&self, index: usize) -> Result<Cow<'_, [u8]>, String> {
        let info = &self.file.tensors()[index];
        Ok(Cow::Borrowed(self.file.tensor_data(info)))
    }
}

/// The facts the type mixes need, read from GGUF metadata and tensor names (missing keys fall back
/// to neutral values: a model without `block_count` simply gets no per-layer rules).
pub fn model_facts(
    metadata: &[(String, Value)],
    tensors: &[TensorDesc],
    has_imatrix: bool,
) -> ModelFacts {
    let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let arch_name = get("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let arch = |suffix: &str| get(&format!("{arch_name}.{suffix}")).and_then(|v| v.to_u64());
    let n_layer = arch("block_count").unwrap_or(0) as usize;
    let heads = arch("attention.head_count").unwrap_or(1).max(1);
    let kv = arch("attention.head_count_kv").unwrap_or(heads).max(1);
    ModelFacts {
        n_layer,
        n_gqa: (heads / kv) as usize,
        tied_embeddings: !tensors.iter().any(|t| t.name == "output.weight"),
        has_imatrix,
    }
}

impl TensorSink for GgufWriter {
    fn write_tensor(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        GgufWriter::write_tensor(self, name, bytes).map_err(|e| e.to_string())
    }
}

/// Metadata of a quantized output: the input's, with the fields llama.cpp sets after quantizing
/// (`general.file_type`, the imatrix provenance keys) and lowbit's method keys.
pub fn output_metadata(
    input: &[(String, Value)],
    file_type: u32,
    provenance: &[(String, Value)],
) -> Vec<(String, Value)> {
    let mut md: Vec<(String, Value)> = input
        .iter()
        .filter(|(k, _)| !k.starts_with("quantize.imatrix.") && !k.starts_with("lowbit.quantize."))
        .cloned()
        .collect();
    let mut set = |key: &str, v: Value| match md.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = v,
        None => md.push((key.to_string(), v)),
    };
    set("general.quantization_version", Value::U32(2));
    set("general.file_type", Value::U32(file_type));
    for (k, v) in provenance {
        set(k, v.clone());
    }
    md
}
