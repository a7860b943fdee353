//! GGUF → HF folder (`lowbit export-hf`).

use crate::arch::Arch;
use crate::compressed_tensors::{CtScheme, QuantizedLinear};
use std::collections::BTreeMap;
use crate::error::{ConvertError, Result};
use crate::hparams::{metadata_to_config, HfConfigInfo};
use crate::names;
use crate::plan::{meta_to_json, GENERAL_STASH_KEY};
use crate::tokenizer::{HfTokenizerFiles, SpecialKind, Vocab};
use crate::transform::Transform;
use crate::value::Metadata;
use lowbit_files::safetensors::Dtype;
use lowbit_files::{GgufFile, SafeTensorSpec, SafetensorsWriter, TensorInfo};
use lowbit_formats::GgmlType;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Element type of the exported safetensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExportDtype {
    /// Exact: every dequantized GGUF value is representable, so re-import is lossless.
    #[default]
    F32,
    /// Half the size; rounds dequantized values to 8 significant bits.
    Bf16,
}

impl ExportDtype {
    fn safetensors(self) -> Dtype {
        match self {
            ExportDtype::F32 => Dtype::F32,
            ExportDtype::Bf16 => Dtype::BF16,
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            ExportDtype::F32 => "float32",
            ExportDtype::Bf16 => "bfloat16",
        }
    }
}

/// One GGUF tensor and the HF tensor it becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct HfTensorPlan {
    pub gguf_name: String,
    pub hf_name: String,
    /// PyTorch order (GGUF dims reversed).
    pub hf_shape: Vec<u64>,
    /// Applied in reverse ([`Transform::invert`]).
    pub transform: Transform,
}

/// Everything an HF folder holds, except the tensor bytes.
#[derive(Clone, Debug)]
pub struct HfExport {
    pub arch: Arch,
    pub config: Value,
    pub tokenizer: HfTokenizerFiles,
    pub tensors: Vec<HfTensorPlan>,
    /// GGUF tensors with no HF counterpart (`rope_freqs`: folded into `rope_scaling`).
    pub dropped: Vec<String>,
}

/// What [`export_hf`] did.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    pub arch: Arch,
    pub tensors: usize,
    /// Tensors that were stored quantized in the GGUF, by type.
    pub dequantized: Vec<(String, GgmlType)>,
    pub dropped: Vec<String>,
    pub safetensors_bytes: u64,
}

/// Plans the export of an opened GGUF.
pub fn gguf_to_hf(gguf: &GgufFile, dtype: ExportDtype) -> Result<HfExport> {
    let md = Metadata::from_gguf(gguf.metadata());
    let arch_name = md
        .str("general.architecture")
        .ok_or_else(|| ConvertError::MissingMetadata("general.architecture".into()))?;
    let arch = Arch::from_gguf_name(arch_name)?;
    let vocab = Vocab::from_metadata(&md)?;
    let k = |s: &str| format!("{}.{s}", arch.gguf_name());
    let n_head = md.u64(&k("attention.head_count")).unwrap_or(0) as usize;
    let n_kv = md
        .u64(&k("attention.head_count_kv"))
        .map_or(n_head, |v| v as usize);

    let mut tensors = Vec::new();
    let mut dropped = Vec::new();
    for t in gguf.tensors() {
        let Some(hf_name) = names::gguf_to_hf(arch, &t.name)? else {
            dropped.push(t.name.clone());
            continue;
        };
        let transform = export_transform(arch, &t.name, n_head, n_kv);
        tensors.push(HfTensorPlan {
            gguf_name: t.name.clone(),
            hf_name,
            hf_shape: t.dims.iter().rev().copied().collect(),
            transform,
        });
    }

    let embd = gguf.require_tensor("token_embd.weight")?;
    let rope_factor = match gguf.tensor("rope_freqs.weight") {
        Some(t) => {
            let mut v = Vec::new();
            read_f32(gguf, t, &mut v)?;
            v.into_iter().reduce(f32::max)
        }
        None => None,
    };
    let info = HfConfigInfo {
        vocab_size: embd.dims.get(1).copied().unwrap_or(0),
        tie_word_embeddings: gguf.tensor("output.weight").is_none(),
        attention_bias: gguf
            .tensors()
            .iter()
            .any(|t| t.name.ends_with("attn_q.bias")),
        bos_token_id: vocab.special_id(SpecialKind::Bos).map(u64::from),
        eos_token_id: vocab.special_id(SpecialKind::Eos).map(u64::from),
        pad_token_id: vocab.special_id(SpecialKind::Pad).map(u64::from),
        torch_dtype: dtype.torch_name().into(),
        llama3_rope_factor: rope_factor,
    };
    let mut config = metadata_to_config(arch, &md, &info)?;
    let mut stash = serde_json::Map::new();
    for (key, v) in &md.entries {
        let kept = key.starts_with("general.")
            && !matches!(
                key.as_str(),
                "general.architecture"
                    | "general.file_type"
                    | "general.quantization_version"
                    | "general.alignment"
            );
        if let (true, Some(j)) = (kept, meta_to_json(v)) {
            stash.insert(key.clone(), j);
        }
    }
    if let Some(obj) = config.as_object_mut() {
        obj.insert(GENERAL_STASH_KEY.into(), Value::Object(stash));
    }
    let tokenizer = vocab.to_hf(md.u64(&k("context_length")))?;
    Ok(HfExport {
        arch,
        config,
        tokenizer,
        tensors,
        dropped,
    })
}

fn export_transform(arch: Arch, gguf_name: &str, n_head: usize, n_kv: usize) -> Transform {
    if arch.permutes_qk() {
        if gguf_name.ends_with("attn_q.weight") || gguf_name.ends_with("attn_q.bias") {
            return Transform::RopeInterleave { n_head };
        }
        if gguf_name.ends_with("attn_k.weight") || gguf_name.ends_with("attn_k.bias") {
            return Transform::RopeInterleave { n_head: n_kv };
        }
    }
    let shift = arch.norm_shift();
    if shift != 0.0 && gguf_name.ends_with("norm.weight") {
        return Transform::Add(shift);
    }
    Transform::Identity
}

/// Dequantizes a GGUF tensor (any type with a [`lowbit_formats::BlockFormat`]) into `out`.
pub fn read_f32(gguf: &GgufFile, t: &TensorInfo, out: &mut Vec<f32>) -> Result<()> {
    let format = lowbit_formats::block_format(t.ty)
        .ok_or_else(|| ConvertError::NoFormat(t.ty.to_string()))?;
    let row_len = t.row_len() as usize;
    let n_rows = t.n_rows() as usize;
    let row_bytes = t.row_bytes() as usize;
    let data = gguf.tensor_data(t);
    out.clear();
    out.resize(row_len * n_rows, 0.0);
    for (src, dst) in data
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(row_len))
    {
        format.dequantize_row(src, dst)?;
    }
    Ok(())
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|source| ConvertError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, bytes).map_err(|e| ConvertError::io(path, e))
}

/// What replaces the float tensors of a plain export in a quantized checkpoint.
#[derive(Clone, Debug)]
pub struct QuantizedExport {
    pub scheme: CtScheme,
    /// GGUF tensor name → its quantized weight, rows in GGUF order (the export permutes them).
    pub linears: BTreeMap<String, QuantizedLinear>,
    /// GGUF tensor name → float values that replace the file's (norms that SmoothQuant or AWQ
    /// scaled), in GGUF layout.
    pub floats: BTreeMap<String, Vec<f32>>,
}

/// One tensor as it goes into the folder.
enum Planned {
    Float(usize),
    Quantized(Vec<u8>),
}

/// Writes the folder's files into `dir` (which must exist).
fn write_folder(
    gguf: &GgufFile,
    plan: &HfExport,
    dtype: ExportDtype,
    dir: &Path,
    quant: Option<&QuantizedExport>,
) -> Result<ExportSummary> {
    let mut specs: Vec<SafeTensorSpec> = Vec::new();
    let mut order: Vec<(String, Planned)> = Vec::new();
    for (i, t) in plan.tensors.iter().enumerate() {
        let q = quant.and_then(|q| q.linears.get(&t.gguf_name).map(|l| (q, l)));
        let Some((q, linear)) = q else {
            specs.push(SafeTensorSpec::new(t.hf_name.clone(), dtype.safetensors(), &t.hf_shape));
            order.push((t.hf_name.clone(), Planned::Float(i)));
            continue;
        };
        let prefix = t.hf_name.strip_suffix(".weight").ok_or_else(|| ConvertError::BadTensor {
            name: t.hf_name.clone(),
            reason: "only .weight tensors can be stored quantized".into(),
        })?;
        if t.hf_shape != [linear.rows as u64, linear.cols as u64] {
            return Err(ConvertError::BadTensor {
                name: t.gguf_name.clone(),
                reason: format!("quantized as {}x{}, the model has {:?}", linear.rows, linear.cols, t.hf_shape),
            });
        }
        let mut linear = linear.clone();
        linear.invert_rows(&t.hf_name, &t.transform)?;
        for ct in linear.encode(&q.scheme) {
            let name = format!("{prefix}.{}", ct.suffix);
            specs.push(SafeTensorSpec::new(name.clone(), ct.dtype, &ct.shape));
            order.push((name, Planned::Quantized(ct.bytes)));
        }
    }
    let st_path = dir.join("model.safetensors");
    let mut writer =
        SafetensorsWriter::create(&st_path, vec![("format".into(), "pt".into())], specs)?;
    let mut values = Vec::new();
    let mut bytes = Vec::new();
    let mut dequantized = Vec::new();
    let mut total = 0u64;
    // The writer takes tensors in its own (sorted) order.
    let mut by_name: BTreeMap<String, Planned> = order.into_iter().collect();
    while let Some(name) = writer.next_tensor().map(str::to_string) {
        let planned = by_name.remove(&name).expect("every spec is planned");
        let i = match planned {
            Planned::Quantized(b) => {
                total += b.len() as u64;
                writer.write_tensor(&name, &b)?;
                continue;
            }
            Planned::Float(i) => i,
        };
        let t = &plan.tensors[i];
        let info = gguf.require_tensor(&t.gguf_name)?;
        match quant.and_then(|q| q.floats.get(&t.gguf_name)) {
            Some(v) => values.clone_from(v),
            None => {
                if !matches!(info.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
                    dequantized.push((t.gguf_name.clone(), info.ty));
                }
                read_f32(gguf, info, &mut values)?;
            }
        }
        let rows = t.hf_shape.first().copied().unwrap_or(1) as usize;
        t.transform.invert(&t.hf_name, &mut values, rows)?;
        bytes.clear();
        match dtype {
            ExportDtype::F32 => bytes.extend(values.iter().flat_map(|v| v.to_le_bytes())),
            ExportDtype::Bf16 => bytes.extend(
                values
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()),
            ),
        }
        total += bytes.len() as u64;
        writer.write_tensor(&t.hf_name, &bytes)?;
    }
    writer.finish()?;
    let mut config = plan.config.clone();
    if let (Some(q), Some(obj)) = (quant, config.as_object_mut()) {
        obj.insert("quantization_config".into(), q.scheme.to_config());
    }
    write_json(&dir.join("config.json"), &config)?;
    write_json(&dir.join("tokenizer.json"), &plan.tokenizer.tokenizer_json)?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &plan.tokenizer.tokenizer_config,
    )?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &plan.tokenizer.special_tokens_map,
    )?;
    if let Some(model) = &plan.tokenizer.tokenizer_model {
        let p = dir.join("tokenizer.model");
        std::fs::write(&p, model).map_err(|e| ConvertError::io(&p, e))?;
    }
    Ok(ExportSummary {
        arch: plan.arch,
        tensors: plan.tensors.len(),
        dequantized,
        dropped: plan.dropped.clone(),
        safetensors_bytes: total,
    })
}

/// Exports a GGUF as an HF folder (`model.safetensors`, `config.json`, tokenizer files).
///
/// Atomic: everything is written into a temporary directory beside `out_dir`, which is renamed
/// into place at the end; `out_dir` must not exist or be an empty directory.
pub fn export_hf(
    gguf_path: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
    dtype: ExportDtype,
) -> Result<ExportSummary> {
    let gguf = GgufFile::open(gguf_path)?;
    export_hf_with(&gguf, out_dir, dtype, None)
}

/// [`export_hf`], with the layer linears of `quant` stored as a compressed-tensors checkpoint
/// (`quantization_config` in config.json) and its float replacements written instead of the
/// file's values. Float tensors are f32, so stored scales and dequantized weights stay exact.
pub fn export_hf_with(
    gguf: &GgufFile,
    out_dir: impl AsRef<Path>,
    dtype: ExportDtype,
    quant: Option<&QuantizedExport>,
) -> Result<ExportSummary> {
    let out_dir = out_dir.as_ref();
    if out_dir.exists() {
        let empty = std::fs::read_dir(out_dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(ConvertError::OutputExists(out_dir.to_path_buf()));
        }
    }
    let plan = gguf_to_hf(gguf, dtype)?;
    let parent: PathBuf = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .tempdir_in(&parent)
        .map_err(|e| ConvertError::io(&parent, e))?;
    let _unfinished = lowbit_files::UnfinishedGuard::new(tmp.path());
    let summary = write_folder(gguf, &plan, dtype, tmp.path(), quant)?;
    if out_dir.exists() {
        std::fs::remove_dir(out_dir).map_err(|e| ConvertError::io(out_dir, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, out_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        ConvertError::io(out_dir, e)
    })?;
    Ok(summary)
}
