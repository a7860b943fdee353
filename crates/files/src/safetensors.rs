//! safetensors files: an 8-byte little-endian header length, a JSON header, then raw data.
//!
//! Own parser rather than the `safetensors` crate's so that errors name the file and tensor, the
//! header keeps tensor order, and duplicate JSON keys are caught (a plain JSON map silently keeps
//! the last). The crate still serves as an independent oracle in the tests.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use lowbit_formats::float::{bf16_bits_to_f32, f16_bits_to_f32};
use memmap2::Mmap;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::atomic::AtomicFile;
use crate::error::{FileError, Result};

const METADATA_KEY: &str = "__metadata__";

/// Element types safetensors defines with a whole-byte size.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

const DTYPES: &[(Dtype, &str, usize)] = &[
    (Dtype::BOOL, "BOOL", 1),
    (Dtype::U8, "U8", 1),
    (Dtype::I8, "I8", 1),
    (Dtype::F8_E5M2, "F8_E5M2", 1),
    (Dtype::F8_E4M3, "F8_E4M3", 1),
    (Dtype::I16, "I16", 2),
    (Dtype::U16, "U16", 2),
    (Dtype::F16, "F16", 2),
    (Dtype::BF16, "BF16", 2),
    (Dtype::I32, "I32", 4),
    (Dtype::U32, "U32", 4),
    (Dtype::F32, "F32", 4),
    (Dtype::F64, "F64", 8),
    (Dtype::I64, "I64", 8),
    (Dtype::U64, "U64", 8),
];

impl Dtype {
    pub fn from_name(name: &str) -> Option<Dtype> {
        DTYPES.iter().find(|d| d.1 == name).map(|d| d.0)
    }

    pub fn name(self) -> &'static str {
        DTYPES.iter().find(|d| d.0 == self).map_or("?", |d| d.1)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        DTYPES.iter().find(|d| d.0 == self).map_or(1, |d| d.2)
    }

    /// Whether [`SafetensorsFile::to_f32`] can convert this type.
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor in a safetensors header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafeTensorInfo {
    pub name: String,
    pub dtype: Dtype,
    /// Row-major (PyTorch) order: the last dimension is contiguous, unlike GGUF's `dims`.
    pub shape: Vec<u64>,
    /// Offset relative to the data section.
    pub offset: u64,
    pub size: u64,
}

impl SafeTensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A tensor to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafeTensorSpec {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
}

impl SafeTensorSpec {
    pub fn new(name: impl Into<String>, dtype: Dtype, shape: &[u64]) -> SafeTensorSpec {
        SafeTensorSpec {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
        }
    }
}

fn byte_size(dtype: Dtype, shape: &[u64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d))
}

pub struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
    data_offset: u64,
    tensors: Vec<SafeTensorInfo>,
    index: HashMap<String, usize>,
    metadata: Vec<(String, String)>,
}

impl fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("path", &self.path)
            .field("n_tensors", &self.tensors.len())
            .finish()
    }
}

/// The header's top-level object in file order, duplicates kept so they can be reported.
pub(crate) struct Entries(pub(crate) Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfo {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

impl SafetensorsFile {
    /// Opens and validates a safetensors file (memory-mapped; see [`crate::GgufFile::open`] for
    /// the same caveat about concurrent modification).
    pub fn open(path: impl AsRef<Path>) -> Result<SafetensorsFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FileError::io(path, "opening", e))?;
        // SAFETY: read-only map owned by the returned value; see GgufFile::open.
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| FileError::io(path, "memory-mapping", e))?;
        let bad = |msg: String| FileError::invalid(path, msg);

        let len = map.len() as u64;
        if len < 8 {
            return Err(FileError::Truncated {
                path: path.into(),
                offset: 0,
                need: 8,
                left: len,
                what: "header length".into(),
            });
        }
        let header_len = u64::from_le_bytes(map[..8].try_into().expect("8 bytes"));
        if header_len > len - 8 {
            return Err(FileError::CountTooLarge {
                path: path.into(),
                offset: 0,
                what: "header length".into(),
                count: header_len,
                left: len - 8,
            });
        }
        let data_offset = 8 + header_len;
        let data_len = len - data_offset;
        let header = &map[8..data_offset as usize];
        let entries: Entries = serde_json::from_slice(header)
            .map_err(|e| bad(format!("header is not a valid JSON object: {e}")))?;

        let mut tensors = Vec::with_capacity(entries.0.len());
        let mut index = HashMap::with_capacity(entries.0.len());
        let mut metadata = None;
        for (name, value) in entries.0 {
            if name == METADATA_KEY {
                if metadata.is_some() {
                    return Err(bad(format!("'{METADATA_KEY}' appears twice")));
                }
                metadata =
                    Some(parse_metadata(value).map_err(|m| bad(format!("{METADATA_KEY}: {m}")))?);
                continue;
            }
            let raw: RawInfo =
                serde_json::from_value(value).map_err(|e| bad(format!("tensor '{name}': {e}")))?;
            let dtype = Dtype::from_name(&raw.dtype).ok_or_else(|| {
                bad(format!(
                    "tensor '{name}': unsupported dtype '{}'",
                    raw.dtype
                ))
            })?;
            let [start, end] = raw.data_offsets;
            let size = byte_size(dtype, &raw.shape)
                .ok_or_else(|| bad(format!("tensor '{name}': size overflows")))?;
            if start > end || end > data_len {
                return Err(bad(format!(
                    "tensor '{name}': data_offsets [{start}, {end}] outside the {data_len}-byte data section"
                )));
            }
            if end - start != size {
                return Err(bad(format!(
                    "tensor '{name}': data_offsets span {} bytes but {dtype} {:?} needs {size}",
                    end - start,
                    raw.shape
                )));
            }
            if index.insert(name.clone(), tensors.len()).is_some() {
                return Err(bad(format!("tensor '{name}' appears twice in the header")));
            }
            tensors.push(SafeTensorInfo {
                name,
                dtype,
                shape: raw.shape,
                offset: start,
                size,
            });
        }
        tensors.sort_by_key(|t| t.offset);
        for w in tensors.windows(2) {
            if w[0].offset + w[0].size > w[1].offset && w[1].size > 0 {
                return Err(bad(format!(
                    "tensor '{}' overlaps tensor '{}'",
                    w[1].name, w[0].name
                )));
            }
        }
        for (i, t) in tensors.iter().enumerate() {
            index.insert(t.name.clone(), i);
        }
        Ok(SafetensorsFile {
            path: path.into(),
            map,
            data_offset,
            tensors,
            index,
            metadata: metadata.unwrap_or_default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in data order.
    pub fn tensors(&self) -> &[SafeTensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&SafeTensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    pub fn require_tensor(&self, name: &str) -> Result<&SafeTensorInfo> {
        self.tensor(name).ok_or_else(|| FileError::MissingTensor {
            path: self.path.clone(),
            tensor: name.into(),
        })
    }

    /// `__metadata__` entries, sorted by key.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    pub fn get_metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Raw little-endian bytes. `info` must come from this file (validated at open).
    pub fn tensor_data(&self, info: &SafeTensorInfo) -> &[u8] {
        let start = (self.data_offset + info.offset) as usize;
        &self.map[start..start + info.size as usize]
    }

    /// Converts a float tensor (F32/F16/BF16/F64) into `out`, which must hold exactly
    /// `n_elements` values.
    pub fn read_f32_into(&self, info: &SafeTensorInfo, out: &mut [f32]) -> Result<()> {
        if out.len() as u64 != info.n_elements() {
            return Err(FileError::invalid(
                &self.path,
                format!(
                    "tensor '{}': output holds {} values, tensor has {}",
                    info.name,
                    out.len(),
                    info.n_elements()
                ),
            ));
        }
        let data = self.tensor_data(info);
        match info.dtype {
            Dtype::F32 => convert::<4>(data, out, f32::from_le_bytes),
            Dtype::F16 => convert::<2>(data, out, |b| f16_bits_to_f32(u16::from_le_bytes(b))),
            Dtype::BF16 => convert::<2>(data, out, |b| bf16_bits_to_f32(u16::from_le_bytes(b))),
            Dtype::F64 => convert::<8>(data, out, |b| f64::from_le_bytes(b) as f32),
            d => {
                return Err(FileError::invalid(
                    &self.path,
                    format!(
                    "tensor '{}': dtype {d} is not a float type; use tensor_data for raw access",
                    info.name
                ),
                ))
            }
        }
        Ok(())
    }

    pub fn to_f32(&self, info: &SafeTensorInfo) -> Result<Vec<f32>> {
        let mut v = vec![0.0; info.n_elements() as usize];
        self.read_f32_into(info, &mut v)?;
        Ok(v)
    }
}

fn convert<const N: usize>(data: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) {
    for (o, b) in out.iter_mut().zip(data.chunks_exact(N)) {
        *o = f(b.try_into().expect("chunks_exact yields N bytes"));
    }
}

fn parse_metadata(v: serde_json::Value) -> std::result::Result<Vec<(String, String)>, String> {
    let entries: Entries = serde_json::from_value(v).map_err(|e| e.to_string())?;
    let mut out: Vec<(String, String)> = Vec::with_capacity(entries.0.len());
    for (k, v) in entries.0 {
        let serde_json::Value::String(s) = v else {
            return Err(format!("value of '{k}' is not a string"));
        };
        out.push((k, s));
    }
    Ok(out)
}

/// Streaming, atomic safetensors writer; tensors are laid out contiguously in declared order.
pub struct SafetensorsWriter {
    out: AtomicFile,
    layout: Vec<SafeTensorInfo>,
    next: usize,
}

impl SafetensorsWriter {
    pub fn create(
        path: impl AsRef<Path>,
        metadata: Vec<(String, String)>,
        tensors: Vec<SafeTensorSpec>,
    ) -> Result<SafetensorsWriter> {
        let path = path.as_ref();
        let bad = |msg: String| FileError::invalid(path, msg);
        let mut header = serde_json::Map::new();
        if !metadata.is_empty() {
            let mut m = serde_json::Map::new();
            for (k, v) in metadata {
                if m.insert(k.clone(), v.into()).is_some() {
                    return Err(bad(format!("metadata key '{k}' given twice")));
                }
            }
            header.insert(METADATA_KEY.into(), m.into());
        }
        let mut layout = Vec::with_capacity(tensors.len());
        let mut offset = 0u64;
        for t in tensors {
            if t.name == METADATA_KEY {
                return Err(bad(format!("'{METADATA_KEY}' cannot be a tensor name")));
            }
            let size = byte_size(t.dtype, &t.shape)
                .ok_or_else(|| bad(format!("tensor '{}': size overflows", t.name)))?;
            let end = offset + size;
            let info = serde_json::json!({ "dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [offset, end] });
            if header.insert(t.name.clone(), info).is_some() {
                return Err(bad(format!("tensor '{}' given twice", t.name)));
            }
            layout.push(SafeTensorInfo {
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                offset,
                size,
            });
            offset = end;
        }
        let mut json =
            serde_json::to_vec(&header).map_err(|e| bad(format!("encoding header: {e}")))?;
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while json.len() % 8 != 0 {
            json.push(b' ');
        }
        let mut out = AtomicFile::create(path)?;
        out.write_all(&(json.len() as u64).to_le_bytes())?;
        out.write_all(&json)?;
        Ok(SafetensorsWriter {
            out,
            layout,
            next: 0,
        })
    }

    pub fn next_tensor(&self) -> Option<&str> {
        self.layout.get(self.next).map(|t| t.name.as_str())
    }

    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let path = self.out.path();
        let Some(t) = self.layout.get(self.next) else {
            return Err(FileError::invalid(
                path,
                format!("tensor '{name}': all declared tensors already written"),
            ));
        };
        if t.name != name {
            return Err(FileError::invalid(
                path,
                format!(
                    "tensor '{name}' written out of order; expected '{}'",
                    t.name
                ),
            ));
        }
        if data.len() as u64 != t.size {
            return Err(FileError::invalid(
                path,
                format!(
                    "tensor '{name}': expected {} bytes of data, got {}",
                    t.size,
                    data.len()
                ),
            ));
        }
        self.out.write_all(data)?;
        self.next += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        if let Some(t) = self.layout.get(self.next) {
            return Err(FileError::invalid(
                self.out.path(),
                format!("finish() before tensor '{}' was written", t.name),
            ));
        }
        self.out.commit()
    }
}
