//! Conversions between [`MetaValue`] and `lowbit_files`' GGUF value type.

use crate::value::{MetaValue, Metadata};
use lowbit_files::{Array, StrArray, Value};

impl MetaValue {
    pub fn to_gguf(&self) -> Value {
        match self {
            MetaValue::U8(v) => Value::U8(*v),
            MetaValue::I8(v) => Value::I8(*v),
            MetaValue::U16(v) => Value::U16(*v),
            MetaValue::I16(v) => Value::I16(*v),
            MetaValue::U32(v) => Value::U32(*v),
            MetaValue::I32(v) => Value::I32(*v),
            MetaValue::U64(v) => Value::U64(*v),
            MetaValue::I64(v) => Value::I64(*v),
            MetaValue::F32(v) => Value::F32(*v),
            MetaValue::F64(v) => Value::F64(*v),
            MetaValue::Bool(v) => Value::Bool(*v),
            MetaValue::Str(s) => Value::String(s.clone()),
            MetaValue::StrArray(a) => Value::Array(Array::String(a.iter().collect::<StrArray>())),
            MetaValue::I32Array(a) => Value::Array(Array::I32(a.clone())),
            MetaValue::F32Array(a) => Value::Array(Array::F32(a.clone())),
            MetaValue::Array(items) => Value::Array(scalar_array(items)),
        }
    }

    /// `None` for nested arrays of scalars other than the typed variants (none of the keys
    /// this crate reads use them).
    pub fn from_gguf(v: &Value) -> Option<MetaValue> {
        Some(match v {
            Value::U8(v) => MetaValue::U8(*v),
            Value::I8(v) => MetaValue::I8(*v),
            Value::U16(v) => MetaValue::U16(*v),
            Value::I16(v) => MetaValue::I16(*v),
            Value::U32(v) => MetaValue::U32(*v),
            Value::I32(v) => MetaValue::I32(*v),
            Value::U64(v) => MetaValue::U64(*v),
            Value::I64(v) => MetaValue::I64(*v),
            Value::F32(v) => MetaValue::F32(*v),
            Value::F64(v) => MetaValue::F64(*v),
            Value::Bool(v) => MetaValue::Bool(*v),
            Value::String(s) => MetaValue::Str(s.clone()),
            Value::Array(Array::String(a)) => {
                MetaValue::StrArray(a.iter().map(str::to_string).collect())
            }
            Value::Array(Array::I32(a)) => MetaValue::I32Array(a.clone()),
            Value::Array(Array::F32(a)) => MetaValue::F32Array(a.clone()),
            Value::Array(Array::U32(a)) => {
                MetaValue::Array(a.iter().map(|v| MetaValue::U32(*v)).collect())
            }
            Value::Array(Array::I64(a)) => {
                MetaValue::Array(a.iter().map(|v| MetaValue::I64(*v)).collect())
            }
            Value::Array(Array::U64(a)) => {
                MetaValue::Array(a.iter().map(|v| MetaValue::U64(*v)).collect())
            }
            Value::Array(Array::Bool(a)) => {
                MetaValue::Array(a.iter().map(|v| MetaValue::Bool(*v)).collect())
            }
            Value::Array(Array::U8(a)) => {
                MetaValue::Array(a.iter().map(|v| MetaValue::U8(*v)).collect())
            }
            Value::Array(Array::F64(a)) => {
                MetaValue::Array(a.iter().map(|v| MetaValue::F64(*v)).collect())
            }
            _ => return None,
        })
    }
}

/// A homogeneous array from scalar items (the element type of the first item decides; items of
/// another type are dropped, which the typed constructors in this crate never produce).
fn scalar_array(items: &[MetaValue]) -> Array {
    macro_rules! collect {
        ($var:ident) => {
            Array::$var(
                items
                    .iter()
                    .filter_map(|v| {
                        if let MetaValue::$var(x) = v {
                            Some(x.clone())
                        } else {
                            None
                        }
                    })
                    .collect(),
            )
        };
    }
    match items.first() {
        Some(MetaValue::U8(_)) => collect!(U8),
        Some(MetaValue::I8(_)) => collect!(I8),
        Some(MetaValue::U16(_)) => collect!(U16),
        Some(MetaValue::I16(_)) => collect!(I16),
        Some(MetaValue::U32(_)) => collect!(U32),
        Some(MetaValue::I32(_)) => collect!(I32),
        Some(MetaValue::U64(_)) => collect!(U64),
        Some(MetaValue::I64(_)) => collect!(I64),
        Some(MetaValue::F32(_)) => collect!(F32),
        Some(MetaValue::F64(_)) => collect!(F64),
        Some(MetaValue::Bool(_)) => collect!(Bool),
        Some(MetaValue::Str(_)) => Array::String(
            items
                .iter()
                .filter_map(|v| {
                    if let MetaValue::Str(s) = v {
                        Some(s.as_str())
                    } else {
                        None
                    }
                })
                .collect(),
        ),
        _ => Array::Array(
            items
                .iter()
                .filter_map(|v| match v.to_gguf() {
                    Value::Array(a) => Some(a),
                    _ => None,
                })
                .collect(),
        ),
    }
}

impl Metadata {
    /// For `GgufWriter::create`.
    pub fn to_gguf(&self) -> Vec<(String, Value)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.to_gguf()))
            .collect()
    }

    /// From `GgufFile::metadata`; values of shapes this crate never reads are dropped.
    pub fn from_gguf(kv: &[(String, Value)]) -> Metadata {
        Metadata {
            entries: kv
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), MetaValue::from_gguf(v)?)))
                .collect(),
        }
    }
}
