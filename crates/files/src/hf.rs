//! A Hugging Face model folder: `config.json`, one or more safetensors shards, tokenizer files.
//!
//! Shards are all memory-mapped up front, so tensors can be fetched by name in any order without
//! reopening files; the index is cross-checked against the shards' own headers so a stale or
//! hand-edited index cannot silently shadow or drop a tensor.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use crate::error::{FileError, Result};
use crate::safetensors::{Entries, SafeTensorInfo, SafetensorsFile};

pub const CONFIG: &str = "config.json";
pub const SINGLE: &str = "model.safetensors";
pub const INDEX: &str = "model.safetensors.index.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

pub struct HfModel {
    dir: PathBuf,
    config: Json,
    shards: Vec<SafetensorsFile>,
    /// name → (shard, index in that shard's tensor list)
    index: HashMap<String, (usize, usize)>,
    tokenizer: Option<PathBuf>,
    tokenizer_config: Option<PathBuf>,
}

impl std::fmt::Debug for HfModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfModel")
            .field("dir", &self.dir)
            .field("shards", &self.shards.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct IndexFile {
    weight_map: Entries,
}

fn read_json(path: &Path) -> Result<Json> {
    let text = std::fs::read(path).map_err(|e| FileError::io(path, "reading", e))?;
    serde_json::from_slice(&text)
        .map_err(|e| FileError::invalid(path, format!("invalid JSON: {e}")))
}

fn optional(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}

impl HfModel {
    pub fn open(dir: impl AsRef<Path>) -> Result<HfModel> {
        let dir = dir.as_ref().to_owned();
        let config_path = dir.join(CONFIG);
        let config = read_json(&config_path)?;
        if !config.is_object() {
            return Err(FileError::invalid(
                &config_path,
                "top level is not a JSON object",
            ));
        }

        let index_path = dir.join(INDEX);
        let single = dir.join(SINGLE);
        let (shards, weight_map) = if index_path.is_file() {
            let (names, map) = read_index(&dir, &index_path)?;
            let shards = names
                .iter()
                .map(|n| SafetensorsFile::open(dir.join(n)))
                .collect::<Result<Vec<_>>>()?;
            (shards, Some((names, map)))
        } else if single.is_file() {
            (vec![SafetensorsFile::open(&single)?], None)
        } else {
            return Err(FileError::invalid(
                &dir,
                format!("no {SINGLE} or {INDEX} (only safetensors weights are supported)"),
            ));
        };

        let mut index: HashMap<String, (usize, usize)> = HashMap::new();
        for (s, shard) in shards.iter().enumerate() {
            for (i, t) in shard.tensors().iter().enumerate() {
                if let Some(&(other, _)) = index.get(&t.name) {
                    return Err(FileError::invalid(
                        &dir,
                        format!(
                            "tensor '{}' is stored twice, in {} and {}",
                            t.name,
                            shards[other].path().display(),
                            shard.path().display()
                        ),
                    ));
                }
                index.insert(t.name.clone(), (s, i));
            }
        }
        if let Some((names, map)) = weight_map {
            for (tensor, shard_name) in map {
                let s = names
                    .iter()
                    .position(|n| *n == shard_name)
                    .expect("shard names come from the map");
                if index.get(&tensor).map(|&(found, _)| found) != Some(s) {
                    return Err(FileError::invalid(
                        &index_path,
                        format!("weight_map lists tensor '{tensor}' in {shard_name}, but that shard does not hold it"),
                    ));
                }
            }
        }

        Ok(HfModel {
            tokenizer: optional(dir.join(TOKENIZER)),
            tokenizer_config: optional(dir.join(TOKENIZER_CONFIG)),
            dir,
            config,
            shards,
            index,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The whole parsed `config.json`.
    pub fn config(&self) -> &Json {
        &self.config
    }

    /// A config entry, looked up at the top level and then in `text_config`, where multimodal
    /// models keep their language-model hyperparameters.
    pub fn config_get(&self, key: &str) -> Option<&Json> {
        self.config
            .get(key)
            .or_else(|| self.config.get("text_config")?.get(key))
    }

    fn config_err(&self, key: &str, expected: &'static str) -> FileError {
        let path = self.dir.join(CONFIG);
        match self.config_get(key) {
            None => FileError::MissingKey {
                path,
                key: key.into(),
            },
            Some(v) => FileError::WrongType {
                path,
                key: key.into(),
                expected,
                found: json_type(v),
            },
        }
    }

    pub fn config_u64(&self, key: &str) -> Result<u64> {
        self.config_get(key)
            .and_then(Json::as_u64)
            .ok_or_else(|| self.config_err(key, "non-negative integer"))
    }

    pub fn config_f64(&self, key: &str) -> Result<f64> {
        self.config_get(key)
            .and_then(Json::as_f64)
            .ok_or_else(|| self.config_err(key, "number"))
    }

    pub fn config_str(&self, key: &str) -> Result<&str> {
        self.config_get(key)
            .and_then(Json::as_str)
            .ok_or_else(|| self.config_err(key, "string"))
    }

    pub fn config_bool(&self, key: &str) -> Result<bool> {
        self.config_get(key)
            .and_then(Json::as_bool)
            .ok_or_else(|| self.config_err(key, "bool"))
    }

    /// `model_type` (`llama`, `bert`, …).
    pub fn model_type(&self) -> Result<&str> {
        self.config_str("model_type")
    }

    /// `architectures` (e.g. `["LlamaForCausalLM"]`); empty when absent.
    pub fn architectures(&self) -> Vec<&str> {
        self.config
            .get("architectures")
            .and_then(Json::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Json::as_str).collect())
    }

    pub fn shards(&self) -> &[SafetensorsFile] {
        &self.shards
    }

    pub fn n_tensors(&self) -> usize {
        self.index.len()
    }

    /// Every tensor, shard by shard in data order, with the shard holding it.
    pub fn tensors(&self) -> impl Iterator<Item = (&SafetensorsFile, &SafeTensorInfo)> + '_ {
        self.shards
            .iter()
            .flat_map(|s| s.tensors().iter().map(move |t| (s, t)))
    }

    pub fn tensor(&self, name: &str) -> Option<(&SafetensorsFile, &SafeTensorInfo)> {
        let &(s, i) = self.index.get(name)?;
        Some((&self.shards[s], &self.shards[s].tensors()[i]))
    }

    fn require(&self, name: &str) -> Result<(&SafetensorsFile, &SafeTensorInfo)> {
        self.tensor(name).ok_or_else(|| FileError::MissingTensor {
            path: self.dir.clone(),
            tensor: name.into(),
        })
    }

    pub fn tensor_data(&self, name: &str) -> Result<&[u8]> {
        let (s, t) = self.require(name)?;
        Ok(s.tensor_data(t))
    }

    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let (s, t) = self.require(name)?;
        s.to_f32(t)
    }

    pub fn tokenizer_json_path(&self) -> Option<&Path> {
        self.tokenizer.as_deref()
    }

    pub fn tokenizer_config_path(&self) -> Option<&Path> {
        self.tokenizer_config.as_deref()
    }

    /// Parses `tokenizer.json` on demand (it can be tens of MB); `None` if the folder has none.
    pub fn load_tokenizer_json(&self) -> Result<Option<Json>> {
        self.tokenizer.as_deref().map(read_json).transpose()
    }

    pub fn load_tokenizer_config(&self) -> Result<Option<Json>> {
        self.tokenizer_config.as_deref().map(read_json).transpose()
    }
}

/// Shard names (sorted, deduplicated) and the weight map in file order.
type WeightMap = Vec<(String, String)>;

fn read_index(dir: &Path, path: &Path) -> Result<(Vec<String>, WeightMap)> {
    let text = std::fs::read(path).map_err(|e| FileError::io(path, "reading", e))?;
    let idx: IndexFile = serde_json::from_slice(&text)
        .map_err(|e| FileError::invalid(path, format!("invalid index: {e}")))?;
    let mut map = Vec::with_capacity(idx.weight_map.0.len());
    let mut seen = HashMap::with_capacity(idx.weight_map.0.len());
    for (tensor, shard) in idx.weight_map.0 {
        let Json::String(shard) = shard else {
            return Err(FileError::invalid(
                path,
                format!("weight_map entry for '{tensor}' is not a file name"),
            ));
        };
        let mut comps = Path::new(&shard).components();
        if !matches!(
            (comps.next(), comps.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(FileError::invalid(
                path,
                format!("shard name '{shard}' for '{tensor}' is not a plain file name"),
            ));
        }
        if let Some(prev) = seen.insert(tensor.clone(), shard.clone()) {
            return Err(FileError::invalid(
                path,
                format!("tensor '{tensor}' is listed twice (in {prev} and {shard})"),
            ));
        }
        map.push((tensor, shard));
    }
    let names: BTreeSet<&String> = map.iter().map(|(_, s)| s).collect();
    for n in &names {
        if !dir.join(n).is_file() {
            let tensor = &map.iter().find(|(_, s)| s == *n).expect("name from map").0;
            return Err(FileError::invalid(
                path,
                format!("shard {n} (holding '{tensor}') is missing"),
            ));
        }
    }
    let names = names.into_iter().cloned().collect();
    Ok((names, map))
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}
