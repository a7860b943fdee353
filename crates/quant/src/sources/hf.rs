//! A Hugging Face folder as a quantization source: each tensor is read, converted to its GGUF
//! layout (names, Q/K permutation, norm offsets) by `lowbit-convert`, and handed over as f32.
//! This is what makes `lowbit quantize hf_dir out.gguf` one step instead of convert + quantize.

use crate::pipeline::SourceModel;
use crate::plan::TensorDesc;
use lowbit_convert::compressed_tensors::{ActivationStrategy, FolderActivations};
use lowbit_convert::{hf_to_gguf_plan, ConversionPlan, HfFolder};
use lowbit_files::gguf::Value;
use lowbit_formats::GgmlType;
use std::borrow::Cow;
use std::path::Path;

pub struct HfSource {
    folder: HfFolder,
    plan: ConversionPlan,
    descs: Vec<TensorDesc>,
}

impl HfSource {
    pub fn open(dir: &Path) -> Result<HfSource, lowbit_convert::ConvertError> {
        let (folder, plan) = hf_to_gguf_plan(dir)?;
        let descs = plan
            .tensors
            .iter()
            .map(|t| (t.gguf_name.clone(), t.gguf_dims.clone()))
            .chain(
                plan.generated
                    .iter()
                    .map(|g| (g.gguf_name.clone(), g.gguf_dims.clone())),
            )
            .map(|(name, dims)| TensorDesc {
                name,
                dims,
                source: GgmlType::F32,
            })
            .collect();
        Ok(HfSource {
            folder,
            plan,
            descs,
        })
    }

    /// The GGUF metadata the conversion produces (architecture, hyper-parameters, tokenizer).
    pub fn metadata(&self) -> Vec<(String, Value)> {
        self.plan.metadata.to_gguf()
    }

    /// How a compressed-tensors checkpoint rounds activations (None for float folders and
    /// weight-only schemes).
    pub fn activations(&self) -> Result<Option<FolderActivations>, String> {
        let Some(ct) = &self.folder.quantized else { return Ok(None) };
        match ct.scheme.activations {
            None => Ok(None),
            Some(ActivationStrategy::DynamicToken) => Ok(Some(FolderActivations::DynamicToken)),
            Some(ActivationStrategy::StaticTensor { .. }) => {
                let by_prefix = ct.input_ranges(&self.folder.model)?;
                let mut out = std::collections::BTreeMap::new();
                for t in &self.plan.tensors {
                    if let Some(r) = t.hf_name.strip_suffix(".weight").and_then(|p| by_prefix.get(p)) {
                        out.insert(t.gguf_name.clone(), *r);
                    }
                }
                Ok(Some(FolderActivations::Static(out)))
            }
        }
    }

    /// The int8 codes and per-row scales of every module stored as symmetric int8 per output
    /// channel (W8A8 checkpoints; a W8A16 folder's too — the caller decides whether activations
    /// are int8), by GGUF tensor name and in GGUF row order, for the engine's integer products.
    /// Empty for float folders and for modules of other layouts.
    pub fn int8_linears(&self) -> Result<Vec<(String, Vec<i8>, Vec<f32>)>, String> {
        let Some(ct) = &self.folder.quantized else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for t in &self.plan.tensors {
            let Some(prefix) = ct.module_of(&t.hf_name) else { continue };
            let mut q = ct.read(&self.folder.model, prefix).map_err(|e| format!("{}: {e}", t.hf_name))?;
            q.apply_rows(&t.hf_name, &t.transform).map_err(|e| e.to_string())?;
            if let Some((codes, scales)) = q.int8_per_row() {
                out.push((t.gguf_name.clone(), codes, scales));
            }
        }
        Ok(out)
    }

    /// HF tensors deliberately left out (vision towers, stale buffers).
    pub fn skipped(&self) -> &[String] {
        &self.plan.skipped
    }
}

impl SourceModel for HfSource {
    fn tensors(&self) -> &[TensorDesc] {
        &self.descs
    }

    fn raw(&self, index: usize) -> Result<Cow<'_, [u8]>, String> {
        let v = self.values(index)?;
        Ok(Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()))
    }

    fn values(&self, index: usize) -> Result<Cow<'_, [f32]>, String> {
        let n = self.plan.tensors.len();
        if index >= n {
            return Ok(Cow::Borrowed(&self.plan.generated[index - n].data));
        }
        let t = &self.plan.tensors[index];
        let mut buf = Vec::new();
        self.folder
            .read_f32(&t.hf_name, &mut buf)
            .map_err(|e| e.to_string())?;
        t.apply(&mut buf).map_err(|e| e.to_string())?;
        Ok(Cow::Owned(buf))
    }
}
