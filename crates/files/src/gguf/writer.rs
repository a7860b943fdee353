//! Streaming GGUF writer.
//!
//! The whole layout (header, every tensor's offset) is fixed at creation, so tensors can be
//! written one at a time as they are produced and memory stays bounded by the caller's largest
//! tensor. Output is atomic: nothing appears at the destination until [`GgufWriter::finish`].

use std::collections::HashSet;
use std::path::Path;

use super::tensor::{tensor_bytes, TensorInfo, TensorSpec, MAX_NAME_LEN};
use super::value::{Array, Value};
use super::{DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC};
use crate::atomic::AtomicFile;
use crate::error::{FileError, Result, TensorProblem};

/// The version this writer produces.
pub const WRITE_VERSION: u32 = 3;

pub struct GgufWriter {
    out: AtomicFile,
    alignment: u64,
    data_offset: u64,
    layout: Vec<TensorInfo>,
    next: usize,
}

impl GgufWriter {
    /// Validates everything that can be validated up front (duplicate keys or names, shapes,
    /// alignment) and writes the header. The alignment comes from `general.alignment` if present
    /// (it must be a power-of-two u32), else 32.
    pub fn create(
        path: impl AsRef<Path>,
        metadata: Vec<(String, Value)>,
        tensors: Vec<TensorSpec>,
    ) -> Result<GgufWriter> {
        let path = path.as_ref();
        let alignment = alignment_of(path, &metadata)?;
        let layout = plan(path, tensors, alignment)?;
        let header = encode_header(path, &metadata, &layout)?;

        let mut out = AtomicFile::create(path)?;
        out.write_all(&header)?;
        out.pad_to(alignment)?;
        let data_offset = out.position();
        Ok(GgufWriter {
            out,
            alignment,
            data_offset,
            layout,
            next: 0,
        })
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset of the data section in the output.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The planned tensor infos, offsets included, in write order.
    pub fn layout(&self) -> &[TensorInfo] {
        &self.layout
    }

    /// Name of the tensor `write_tensor` expects next, if any remain.
    pub fn next_tensor(&self) -> Option<&str> {
        self.layout.get(self.next).map(|t| t.name.as_str())
    }

    /// Writes the next tensor's data; `name` must be the next declared tensor and `data` exactly
    /// its size.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let Some(t) = self.layout.get(self.next) else {
            return Err(FileError::tensor(
                self.out.path(),
                name,
                TensorProblem::OutOfOrder {
                    expected: "<none left>".into(),
                },
            ));
        };
        if t.name != name {
            let expected = t.name.clone();
            return Err(FileError::tensor(
                self.out.path(),
                name,
                TensorProblem::OutOfOrder { expected },
            ));
        }
        if data.len() as u64 != t.size {
            let problem = TensorProblem::DataLength {
                expected: t.size,
                got: data.len() as u64,
            };
            return Err(FileError::tensor(self.out.path(), name, problem));
        }
        debug_assert_eq!(self.out.position(), self.data_offset + t.offset);
        self.out.write_all(data)?;
        self.out.pad_to(self.alignment)?;
        self.next += 1;
        Ok(())
    }

    /// Checks every tensor was written, then syncs and moves the file into place.
    pub fn finish(self) -> Result<()> {
        if let Some(t) = self.layout.get(self.next) {
            return Err(FileError::invalid(
                self.out.path(),
                format!(
                    "finish() called before tensor '{}' ({} of {}) was written",
                    t.name,
                    self.next + 1,
                    self.layout.len()
                ),
            ));
        }
        self.out.commit()
    }
}

/// The size of the file that `create`, one `write_tensor` per tensor and `finish` would write,
/// without writing anything: header, padding to the alignment, every tensor padded. What a size
/// budget is checked against.
pub fn planned_size(metadata: &[(String, Value)], tensors: Vec<TensorSpec>) -> Result<u64> {
    let path = Path::new("<planned output>");
    let alignment = alignment_of(path, metadata)?;
    let layout = plan(path, tensors, alignment)?;
    let header = encode_header(path, metadata, &layout)?;
    let data_offset = (header.len() as u64).next_multiple_of(alignment);
    let data: u64 = layout
        .iter()
        .map(|t| t.size.next_multiple_of(alignment))
        .sum();
    Ok(data_offset + data)
}

fn alignment_of(path: &Path, metadata: &[(String, Value)]) -> Result<u64> {
    match metadata
        .iter()
        .find(|(k, _)| k == KEY_ALIGNMENT)
        .map(|(_, v)| v)
    {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() => Ok(u64::from(*a)),
        Some(Value::U32(a)) => Err(FileError::BadAlignment {
            path: path.to_owned(),
            value: u64::from(*a),
        }),
        Some(v) => Err(FileError::WrongType {
            path: path.to_owned(),
            key: KEY_ALIGNMENT.into(),
            expected: "u32",
            found: v.type_name(),
        }),
    }
}

fn plan(path: &Path, tensors: Vec<TensorSpec>, alignment: u64) -> Result<Vec<TensorInfo>> {
    let mut names = HashSet::with_capacity(tensors.len());
    let mut offset = 0u64;
    let mut layout = Vec::with_capacity(tensors.len());
    for t in tensors {
        let bad = |p| FileError::tensor(path, &t.name, p);
        if t.name.len() > MAX_NAME_LEN {
            return Err(bad(TensorProblem::NameTooLong { len: t.name.len() }));
        }
        if !names.insert(t.name.clone()) {
            return Err(bad(TensorProblem::Duplicate));
        }
        let size = tensor_bytes(&t.dims, t.ty).map_err(bad)?;
        layout.push(TensorInfo {
            name: t.name,
            dims: t.dims,
            ty: t.ty,
            offset,
            size,
        });
        offset = size
            .checked_next_multiple_of(alignment)
            .and_then(|s| offset.checked_add(s))
            .ok_or_else(|| FileError::invalid(path, "total tensor data size overflows"))?;
    }
    Ok(layout)
}

fn encode_header(
    path: &Path,
    metadata: &[(String, Value)],
    layout: &[TensorInfo],
) -> Result<Vec<u8>> {
    let mut keys = HashSet::with_capacity(metadata.len());
    let mut h = Vec::with_capacity(4096);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    h.extend_from_slice(&(layout.len() as u64).to_le_bytes());
    h.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        if !keys.insert(key.as_str()) {
            return Err(FileError::DuplicateKey {
                path: path.to_owned(),
                key: key.clone(),
            });
        }
        put_str(&mut h, key);
        h.extend_from_slice(&value.value_type().id().to_le_bytes());
        put_value(&mut h, value);
    }
    for t in layout {
        put_str(&mut h, &t.name);
        h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            h.extend_from_slice(&d.to_le_bytes());
        }
        h.extend_from_slice(&t.ty.id().to_le_bytes());
        h.extend_from_slice(&t.offset.to_le_bytes());
    }
    Ok(h)
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.push(*x as u8),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(u8::from(*x)),
        Value::String(s) => put_str(h, s),
        Value::Array(a) => put_array(h, a),
    }
}

fn put_array(h: &mut Vec<u8>, a: &Array) {
    h.extend_from_slice(&a.elem_type().id().to_le_bytes());
    h.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! nums {
        ($v:expr) => {
            for x in $v {
                h.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => h.extend_from_slice(v),
        Array::I8(v) => nums!(v),
        Array::U16(v) => nums!(v),
        Array::I16(v) => nums!(v),
        Array::U32(v) => nums!(v),
        Array::I32(v) => nums!(v),
        Array::F32(v) => nums!(v),
        Array::U64(v) => nums!(v),
        Array::I64(v) => nums!(v),
        Array::F64(v) => nums!(v),
        Array::Bool(v) => h.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => {
            for s in v.iter() {
                put_str(h, s);
            }
        }
        Array::Array(v) => {
            for inner in v {
                put_array(h, inner);
            }
        }
    }
}
