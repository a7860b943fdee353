//! An HF model folder opened for reading (via `lowbit_files::hf::HfModel`, which handles single
//! and sharded checkpoints) and planned for conversion. A compressed-tensors folder is read as
//! the float model it stands for: each quantized module's weight is dequantized on read, so every
//! command that takes an HF folder takes a quantized one.

use crate::compressed_tensors::CtFolder;
use crate::error::Result;
use crate::plan::{plan_hf_to_gguf, ConversionPlan};
use lowbit_files::hf::HfModel;
use std::path::Path;

pub struct HfFolder {
    pub model: HfModel,
    /// Set when config.json has a compressed-tensors `quantization_config`.
    pub quantized: Option<CtFolder>,
}

impl HfFolder {
    pub fn open(dir: impl AsRef<Path>) -> Result<HfFolder> {
        let model = HfModel::open(dir)?;
        let quantized = CtFolder::detect(&model).map_err(|reason| crate::ConvertError::BadTensor {
            name: model.dir().join("config.json").display().to_string(),
            reason,
        })?;
        Ok(HfFolder { model, quantized })
    }

    /// Float tensor values as f32 (bf16/f16 widen exactly; quantized weights are dequantized),
    /// reusing `out`'s allocation.
    pub fn read_f32(&self, name: &str, out: &mut Vec<f32>) -> Result<()> {
        if let Some(ct) = &self.quantized {
            if let Some(prefix) = ct.module_of(name) {
                let q = ct.read(&self.model, prefix).map_err(|reason| crate::ConvertError::BadTensor {
                    name: name.to_string(),
                    reason,
                })?;
                *out = q.dequantize();
                return Ok(());
            }
        }
        let (shard, info) =
            self.model
                .tensor(name)
                .ok_or_else(|| crate::ConvertError::BadTensor {
                    name: name.to_string(),
                    reason: "not in any shard".into(),
                })?;
        out.clear();
        out.resize(info.n_elements() as usize, 0.0);
        shard.read_f32_into(info, out)?;
        Ok(())
    }

    /// The conversion plan for this folder (model name = folder name).
    pub fn plan(&self) -> Result<ConversionPlan> {
        let tensors: Vec<(String, Vec<u64>)> = match &self.quantized {
            Some(ct) => ct.logical_tensors(&self.model),
            None => self
                .model
                .tensors()
                .map(|(_, t)| (t.name.clone(), t.shape.clone()))
                .collect(),
        };
        let dir = self.model.dir();
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("model");
        plan_hf_to_gguf(dir, self.model.config(), &tensors, name)
    }
}

/// Opens an HF folder and plans its conversion to GGUF.
pub fn hf_to_gguf_plan(dir: impl AsRef<Path>) -> Result<(HfFolder, ConversionPlan)> {
    let folder = HfFolder::open(dir)?;
    let plan = folder.plan()?;
    Ok((folder, plan))
}
