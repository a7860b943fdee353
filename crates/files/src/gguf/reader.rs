//! Memory-mapped GGUF reader.
//!
//! The header is parsed and fully validated at open time (every tensor's extent checked against
//! the file), so later accessors can hand out tensor bytes as plain slices of the map without
//! further checks and without copying.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use lowbit_formats::GgmlType;
use memmap2::Mmap;

use super::cursor::Cursor;
use super::tensor::{tensor_bytes, TensorInfo, MAX_DIMS};
use super::value::{Array, StrArray, Value, ValueType};
use super::{DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC};
use crate::error::{FileError, Result, TensorProblem};

/// Nested arrays deeper than this are refused: each level costs a stack frame, and a hostile
/// file could otherwise nest millions deep. Real files nest at most one level.
const MAX_ARRAY_DEPTH: usize = 32;
/// Smallest possible tensor info: empty name, one dim, type, offset.
const MIN_TENSOR_INFO: u64 = 8 + 4 + 8 + 4 + 8;
/// Smallest possible key/value pair: empty key, type, one-byte value.
const MIN_KV: u64 = 8 + 4 + 1;

pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates a GGUF v2/v3 file.
    ///
    /// The file is memory-mapped: it must not be truncated or rewritten by another process
    /// while the returned value is alive (see [`crate::same_file`] to refuse writing over it).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FileError::io(path, "opening", e))?;
        // SAFETY: the map is read-only and lives as long as the GgufFile; concurrent external
        // modification of the file is documented as unsupported, as for every mmap reader.
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| FileError::io(path, "memory-mapping", e))?;
        Self::from_map(path.to_owned(), map)
    }

    fn from_map(path: PathBuf, map: Mmap) -> Result<GgufFile> {
        let mut h = Header::parse(&map, &path)?;
        let file_len = map.len() as u64;
        let data_offset = h.data_offset;
        let data_len = file_len.saturating_sub(data_offset);
        check_extents(&path, &mut h.tensors, data_len)?;
        let tensor_index = index_tensors(&path, &h.tensors)?;
        Ok(GgufFile {
            path,
            map,
            version: h.version,
            alignment: h.alignment,
            data_offset,
            metadata: h.metadata,
            key_index: h.key_index,
            tensors: h.tensors,
            tensor_index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    /// All key/value pairs in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| FileError::MissingKey {
            path: self.path.clone(),
            key: key.to_owned(),
        })
    }

    fn wrong(&self, key: &str, expected: &'static str, v: &Value) -> FileError {
        FileError::WrongType {
            path: self.path.clone(),
            key: key.to_owned(),
            expected,
            found: v.type_name(),
        }
    }

    /// Any integer type whose value fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.require(key)?;
        v.to_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| self.wrong(key, "u32", v))
    }

    /// Any non-negative integer type.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.to_u64().ok_or_else(|| self.wrong(key, "u64", v))
    }

    /// f32, or f64 narrowed.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        v.to_f64()
            .map(|x| x as f32)
            .ok_or_else(|| self.wrong(key, "f32", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| self.wrong(key, "bool", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "string", v))
    }

    pub fn get_array(&self, key: &str) -> Result<&Array> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong(key, "array", v))
    }

    pub fn get_str_array(&self, key: &str) -> Result<&StrArray> {
        let v = self.require(key)?;
        v.as_str_array()
            .ok_or_else(|| self.wrong(key, "array of string", v))
    }

    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        let v = self.require(key)?;
        v.as_f32_array()
            .ok_or_else(|| self.wrong(key, "array of f32", v))
    }

    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        let v = self.require(key)?;
        v.as_i32_array()
            .ok_or_else(|| self.wrong(key, "array of i32", v))
    }

    /// `general.architecture` (`llama`, `gemma3`, …).
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// `<architecture>.<suffix>`, e.g. `arch_get("block_count")`.
    pub fn arch_get(&self, suffix: &str) -> Option<&Value> {
        let arch = self.architecture().ok()?;
        self.get(&format!("{arch}.{suffix}"))
    }

    /// Tensor infos in header order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name).ok_or_else(|| FileError::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_owned(),
        })
    }

    /// The tensor's bytes, straight from the map. `info` must come from this file's
    /// [`tensors`](Self::tensors) (a foreign one may panic); its extent was validated at open.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + info.offset) as usize;
        &self.map[start..start + info.size as usize]
    }

    /// Sum of all tensors' data sizes (without padding).
    pub fn total_tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.size).sum()
    }

    pub fn total_elements(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements()).sum()
    }
}

struct Header {
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
}

impl Header {
    fn parse(buf: &[u8], path: &Path) -> Result<Header> {
        let mut c = Cursor::new(buf, path);
        let magic: [u8; 4] = c.array(|| "magic".into())?;
        if &magic != MAGIC {
            return Err(FileError::BadMagic {
                path: path.to_owned(),
                found: magic,
            });
        }
        let version = c.u32(|| "version".into())?;
        check_version(path, version)?;
        let n_tensors = c.count(MIN_TENSOR_INFO, || "tensor count".into())?;
        let n_kv = c.count(MIN_KV, || "metadata key/value count".into())?;
        let fits = (n_tensors as u64 * MIN_TENSOR_INFO).checked_add(n_kv as u64 * MIN_KV);
        if fits.map_or(true, |b| b > c.left()) {
            return Err(FileError::CountTooLarge {
                path: path.to_owned(),
                offset: 8,
                what: "tensor and key/value counts together".into(),
                count: (n_tensors + n_kv) as u64,
                left: c.left(),
            });
        }

        let mut metadata = Vec::with_capacity(n_kv);
        let mut key_index = HashMap::with_capacity(n_kv);
        for i in 0..n_kv {
            let key = c.str(|| format!("key of metadata entry {i}"))?;
            let ty_offset = c.pos();
            let type_id = c.u32(|| format!("type of key '{key}'"))?;
            let ty = ValueType::from_id(type_id).ok_or_else(|| FileError::BadValueType {
                path: path.to_owned(),
                offset: ty_offset,
                key: key.to_owned(),
                type_id,
            })?;
            let value = read_value(&mut c, ty, key, 0)?;
            if key_index.insert(key.to_owned(), metadata.len()).is_some() {
                return Err(FileError::DuplicateKey {
                    path: path.to_owned(),
                    key: key.to_owned(),
                });
            }
            metadata.push((key.to_owned(), value));
        }

        let alignment = match key_index.get(KEY_ALIGNMENT).map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
            Some(Value::U32(a)) => {
                return Err(FileError::BadAlignment {
                    path: path.to_owned(),
                    value: u64::from(*a),
                })
            }
            Some(v) => {
                return Err(FileError::WrongType {
                    path: path.to_owned(),
                    key: KEY_ALIGNMENT.into(),
                    expected: "u32",
                    found: v.type_name(),
                })
            }
        };

        let mut tensors = Vec::with_capacity(n_tensors);
        for i in 0..n_tensors {
            tensors.push(read_tensor_info(&mut c, i, alignment)?);
        }
        let data_offset = c.pos().next_multiple_of(alignment);
        Ok(Header {
            version,
            alignment,
            data_offset,
            metadata,
            key_index,
            tensors,
        })
    }
}

fn check_version(path: &Path, version: u32) -> Result<()> {
    let why = match version {
        2 | 3 => return Ok(()),
        1 => "GGUF v1 (32-bit counts) is obsolete; re-convert the model with a current llama.cpp",
        0 => "version 0 is not a GGUF version",
        v if matches!(v.swap_bytes(), 1..=3) => {
            "the file is big-endian; only little-endian GGUF is supported"
        }
        _ => "newer than this reader (supports 2 and 3)",
    };
    Err(FileError::UnsupportedVersion {
        path: path.to_owned(),
        version,
        why,
    })
}

fn read_value(c: &mut Cursor<'_>, ty: ValueType, key: &str, depth: usize) -> Result<Value> {
    let what = || format!("value of key '{key}'");
    Ok(match ty {
        ValueType::U8 => Value::U8(c.array::<1>(what)?[0]),
        ValueType::I8 => Value::I8(c.array::<1>(what)?[0] as i8),
        ValueType::U16 => Value::U16(u16::from_le_bytes(c.array(what)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(c.array(what)?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(c.array(what)?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(c.array(what)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(c.array(what)?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(c.array(what)?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(c.array(what)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(c.array(what)?)),
        ValueType::Bool => {
            let offset = c.pos();
            let b = c.array::<1>(what)?[0];
            Value::Bool(read_bool(c, offset, b, key)?)
        }
        ValueType::String => Value::String(c.str(what)?.to_owned()),
        ValueType::Array => Value::Array(read_array(c, key, depth)?),
    })
}

fn read_bool(c: &Cursor<'_>, offset: u64, b: u8, key: &str) -> Result<bool> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(FileError::invalid(
            c.path(),
            format!("key '{key}': bool byte {b} at offset {offset} is not 0 or 1"),
        )),
    }
}

/// Reads `count` fixed-size little-endian numbers in one bounds check.
fn read_nums<T, const N: usize>(
    c: &mut Cursor<'_>,
    count: usize,
    key: &str,
    conv: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let bytes = c.take((count * N) as u64, || format!("array data of key '{key}'"))?;
    Ok(bytes
        .chunks_exact(N)
        .map(|ch| conv(ch.try_into().expect("chunks_exact yields N bytes")))
        .collect())
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Array> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(FileError::invalid(
            c.path(),
            format!(
                "key '{key}': arrays nested deeper than {MAX_ARRAY_DEPTH} at offset {}",
                c.pos()
            ),
        ));
    }
    let ty_offset = c.pos();
    let type_id = c.u32(|| format!("array element type of key '{key}'"))?;
    let ty = ValueType::from_id(type_id).ok_or_else(|| FileError::BadValueType {
        path: c.path().to_owned(),
        offset: ty_offset,
        key: key.to_owned(),
        type_id,
    })?;
    let n = c.count(ty.min_size(), || format!("array length of key '{key}'"))?;
    Ok(match ty {
        ValueType::U8 => Array::U8(
            c.take(n as u64, || format!("array data of key '{key}'"))?
                .to_vec(),
        ),
        ValueType::I8 => Array::I8(read_nums(c, n, key, i8::from_le_bytes)?),
        ValueType::U16 => Array::U16(read_nums(c, n, key, u16::from_le_bytes)?),
        ValueType::I16 => Array::I16(read_nums(c, n, key, i16::from_le_bytes)?),
        ValueType::U32 => Array::U32(read_nums(c, n, key, u32::from_le_bytes)?),
        ValueType::I32 => Array::I32(read_nums(c, n, key, i32::from_le_bytes)?),
        ValueType::F32 => Array::F32(read_nums(c, n, key, f32::from_le_bytes)?),
        ValueType::U64 => Array::U64(read_nums(c, n, key, u64::from_le_bytes)?),
        ValueType::I64 => Array::I64(read_nums(c, n, key, i64::from_le_bytes)?),
        ValueType::F64 => Array::F64(read_nums(c, n, key, f64::from_le_bytes)?),
        ValueType::Bool => {
            let start = c.pos();
            let bytes = c.take(n as u64, || format!("array data of key '{key}'"))?;
            let mut v = Vec::with_capacity(n);
            for (i, &b) in bytes.iter().enumerate() {
                v.push(read_bool(c, start + i as u64, b, key)?);
            }
            Array::Bool(v)
        }
        ValueType::String => {
            // Strings are at least 8 bytes each, so `n` is bounded by the file; the text itself
            // is at most what is left.
            let mut a = StrArray::with_capacity(n, 0);
            for i in 0..n {
                a.push(c.str(|| format!("string {i} of array '{key}'"))?);
            }
            Array::String(a)
        }
        ValueType::Array => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            Array::Array(v)
        }
    })
}

fn read_tensor_info(c: &mut Cursor<'_>, i: usize, alignment: u64) -> Result<TensorInfo> {
    let name = c.str(|| format!("name of tensor {i}"))?;
    let path = c.path();
    let bad = |problem| FileError::tensor(path, name, problem);
    let n_dims = c.u32(|| format!("n_dims of tensor '{name}'"))?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(bad(TensorProblem::NDims(n_dims)));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(c.u64(|| format!("dimension {d} of tensor '{name}'"))?);
    }
    let type_id = c.u32(|| format!("type of tensor '{name}'"))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| bad(TensorProblem::UnknownType(type_id)))?;
    let offset = c.u64(|| format!("data offset of tensor '{name}'"))?;
    let size = tensor_bytes(&dims, ty).map_err(bad)?;
    if offset % alignment != 0 {
        return Err(bad(TensorProblem::Misaligned { offset, alignment }));
    }
    Ok(TensorInfo {
        name: name.to_owned(),
        dims,
        ty,
        offset,
        size,
    })
}

/// Every tensor inside the data section and no two overlapping.
fn check_extents(path: &Path, tensors: &mut [TensorInfo], data_len: u64) -> Result<()> {
    for t in tensors.iter() {
        let end = t.offset.checked_add(t.size);
        if end.map_or(true, |e| e > data_len) {
            let end = end.unwrap_or(u64::MAX);
            return Err(FileError::tensor(
                path,
                &t.name,
                TensorProblem::OutOfFile {
                    start: t.offset,
                    end,
                    len: data_len,
                },
            ));
        }
    }
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_unstable_by_key(|&i| tensors[i].offset);
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        if a.offset + a.size > b.offset {
            return Err(FileError::tensor(
                path,
                &b.name,
                TensorProblem::Overlap {
                    other: a.name.clone(),
                },
            ));
        }
    }
    Ok(())
}

fn index_tensors(path: &Path, tensors: &[TensorInfo]) -> Result<HashMap<String, usize>> {
    let mut index = HashMap::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        if index.insert(t.name.clone(), i).is_some() {
            return Err(FileError::tensor(path, &t.name, TensorProblem::Duplicate));
        }
    }
    Ok(index)
}
