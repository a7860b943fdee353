//! The model a command works on, as one GGUF file: a GGUF file opened in place, or a Hugging Face
//! folder converted into a temporary GGUF file that lives as long as this value. The conversion
//! keeps every tensor in the type the safetensors store it (F32, F16 or BF16: nothing is
//! requantized or widened), so the engine maps the weights in place either way, and a folder
//! scores and quantizes exactly like `lowbit quantize DIR out.gguf` of the same types.

use crate::pipeline::{self, SourceModel};
use crate::plan::TensorPlan;
use crate::sources::hf::HfSource;
use crate::methods::rtn::Rtn;
use lowbit_convert::compressed_tensors::FolderActivations;
use lowbit_files::gguf::{GgufFile, GgufWriter, TensorSpec};
use std::path::Path;
use tempfile::TempDir;

pub struct ModelFile {
    pub file: GgufFile,
    /// Set for a converted Hugging Face folder: its size on disk, the skipped tensors.
    pub converted_from: Option<HfFolderInfo>,
    _dir: Option<TempDir>,
}

#[derive(Clone, Debug)]
pub struct HfFolderInfo {
    /// Bytes of the folder's safetensors files (what the user downloaded).
    pub bytes: u64,
    /// HF tensors deliberately left out (vision towers, stale buffers).
    pub skipped: Vec<String>,
    /// A quantized checkpoint's activation rounding, which the engine must apply to run it as
    /// its readers do.
    pub activations: Option<FolderActivations>,
    /// The folder, to read its int8 codes again when integer products want them.
    pub dir: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read {path}: {source}")]
    Gguf {
        path: String,
        source: lowbit_files::FileError,
    },
    #[error("cannot convert the Hugging Face folder {path}: {message}")]
    Convert { path: String, message: String },
}

impl ModelFile {
    pub fn open(path: &Path) -> Result<ModelFile, ModelFileError> {
        let gguf_err = |p: &Path, source| ModelFileError::Gguf {
            path: p.display().to_string(),
            source,
        };
        if !path.is_dir() {
            let file = GgufFile::open(path).map_err(|e| gguf_err(path, e))?;
            return Ok(ModelFile {
                file,
                converted_from: None,
                _dir: None,
            });
        }
        let conv = |message: String| ModelFileError::Convert {
            path: path.display().to_string(),
            message,
        };
        let source = HfSource::open(path).map_err(|e| conv(e.to_string()))?;
        let dir = tempfile::Builder::new()
            .prefix("lowbit-hf-")
            .tempdir()
            .map_err(|e| conv(format!("cannot create a temporary folder: {e}")))?;
        let out = dir.path().join("model.gguf");
        let plans: Vec<TensorPlan> = source
            .tensors()
            .iter()
            .map(|d| TensorPlan {
                name: d.name.clone(),
                target: d.source,
                fell_back_from: None,
                keep: true,
            })
            .collect();
        let specs: Vec<TensorSpec> = source
            .tensors()
            .iter()
            .map(|d| TensorSpec::new(d.name.clone(), &d.dims, d.source))
            .collect();
        let mut writer = GgufWriter::create(&out, source.metadata(), specs)
            .map_err(|e| conv(e.to_string()))?;
        pipeline::run(&source, &plans, &Rtn, None, &mut writer, &mut |_| {})
            .map_err(|e| conv(e.to_string()))?;
        writer.finish().map_err(|e| conv(e.to_string()))?;
        let file = GgufFile::open(&out).map_err(|e| gguf_err(&out, e))?;
        let activations = source.activations().map_err(conv)?;
        Ok(ModelFile {
            file,
            converted_from: Some(HfFolderInfo {
                bytes: safetensors_bytes(path),
                skipped: source.skipped().to_vec(),
                activations,
                dir: path.to_path_buf(),
            }),
            _dir: Some(dir),
        })
    }

    /// The activation rounding a quantized checkpoint folder prescribes.
    pub fn activations(&self) -> Option<&FolderActivations> {
        self.converted_from.as_ref()?.activations.as_ref()
    }

    /// A W8A8 folder's int8 weights per GGUF tensor name (see [`HfSource::int8_linears`]); empty
    /// for GGUF files and other folders.
    pub fn int8_linears(&self) -> Result<Vec<(String, Vec<i8>, Vec<f32>)>, ModelFileError> {
        let Some(info) = self.converted_from.as_ref().filter(|i| i.activations.is_some()) else { return Ok(Vec::new()) };
        let conv = |message: String| ModelFileError::Convert { path: info.dir.display().to_string(), message };
        HfSource::open(&info.dir).map_err(|e| conv(e.to_string()))?.int8_linears().map_err(conv)
    }

    /// Bytes of the input as the user has it.
    pub fn input_bytes(&self) -> u64 {
        match &self.converted_from {
            Some(i) => i.bytes,
            None => self.file.file_size(),
        }
    }
}

/// Bytes of the weight files in a folder.
fn safetensors_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
