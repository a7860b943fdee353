//! An HF model folder opened for reading (via `lowbit_files::hf::HfModel`, which handles single
//! and sharded checkpoints) and planned for conversion.

use crate::error::Result;
use crate::plan::{plan_hf_to_gguf, ConversionPlan};
use lowbit_files::hf::HfModel;
use std::path::Path;

pub struct HfFolder {
    pub model: HfModel,
}

impl HfFolder {
    pub fn open(dir: impl AsRef<Path>) -> Result<HfFolder> {
        Ok(HfFolder {
            model: HfModel::open(dir)?,
        })
    }

    /// Float tensor values as f32 (bf16/f16 widen exactly), reusing `out`'s allocation.
    pub fn read_f32(&self, name: &str, out: &mut Vec<f32>) -> Result<()> {
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
        let tensors: Vec<(String, Vec<u64>)> = self
            .model
            .tensors()
            .map(|(_, t)| (t.name.clone(), t.shape.clone()))
            .collect();
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
