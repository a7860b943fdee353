//! An HF model folder opened for reading: config plus the tensors of all safetensors shards.

use crate::error::{ConvertError, Result};
use crate::plan::{plan_hf_to_gguf, ConversionPlan};
use crate::tokenizer::hf_import::read_json_opt;
use lowbit_files::{SafeTensorInfo, SafetensorsFile};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct HfFolder {
    pub dir: PathBuf,
    pub config: Value,
    shards: Vec<SafetensorsFile>,
    /// (shard, tensor index in shard), in shard then file order.
    order: Vec<(usize, usize)>,
}

impl HfFolder {
    /// Opens `config.json` and every `model*.safetensors` shard (sorted by name, as llama.cpp
    /// does).
    pub fn open(dir: impl AsRef<Path>) -> Result<HfFolder> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join("config.json");
        let config = read_json_opt(&config_path)?
            .ok_or_else(|| ConvertError::io(&config_path, std::io::ErrorKind::NotFound.into()))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| ConvertError::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("model") && n.ends_with(".safetensors"))
            })
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(ConvertError::io(
                dir.join("model.safetensors"),
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        let shards = names
            .iter()
            .map(SafetensorsFile::open)
            .collect::<Result<Vec<_>, _>>()?;
        let order = shards
            .iter()
            .enumerate()
            .flat_map(|(s, f)| (0..f.tensors().len()).map(move |i| (s, i)))
            .collect();
        Ok(HfFolder {
            dir,
            config,
            shards,
            order,
        })
    }

    pub fn tensors(&self) -> impl Iterator<Item = &SafeTensorInfo> + '_ {
        self.order
            .iter()
            .map(|&(s, i)| &self.shards[s].tensors()[i])
    }

    /// Float tensor values as f32 (bf16/f16 widen exactly).
    pub fn read_f32(&self, name: &str, out: &mut Vec<f32>) -> Result<()> {
        for f in &self.shards {
            if let Some(info) = f.tensor(name) {
                out.clear();
                out.resize(info.n_elements() as usize, 0.0);
                f.read_f32_into(info, out)?;
                return Ok(());
            }
        }
        Err(ConvertError::BadTensor {
            name: name.to_string(),
            reason: "not in any shard".into(),
        })
    }

    /// The conversion plan for this folder (model name = folder name).
    pub fn plan(&self) -> Result<ConversionPlan> {
        let tensors: Vec<(String, Vec<u64>)> = self
            .tensors()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        let name = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model");
        plan_hf_to_gguf(&self.dir, &self.config, &tensors, name)
    }
}

/// `hf_to_gguf_plan(dir)`: opens the folder and plans its conversion.
pub fn hf_to_gguf_plan(dir: impl AsRef<Path>) -> Result<(HfFolder, ConversionPlan)> {
    let folder = HfFolder::open(dir)?;
    let plan = folder.plan()?;
    Ok((folder, plan))
}
