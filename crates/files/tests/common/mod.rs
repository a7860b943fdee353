//! A raw GGUF byte builder that can express invalid files, for the hostile-input tests.
#![allow(dead_code)]

pub struct RawTensor {
    pub name: Vec<u8>,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub offset: u64,
}

pub struct RawGguf {
    pub magic: [u8; 4],
    pub version: u32,
    /// `None`: the real count.
    pub n_tensors: Option<u64>,
    pub n_kv: Option<u64>,
    /// Already-encoded key/value pairs.
    pub kvs: Vec<Vec<u8>>,
    pub tensors: Vec<RawTensor>,
    pub alignment: u64,
    pub data: Vec<u8>,
}

pub fn gguf_str(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// key, type id, then raw value bytes.
pub fn kv(key: &str, type_id: u32, value: &[u8]) -> Vec<u8> {
    let mut v = gguf_str(key.as_bytes());
    v.extend_from_slice(&type_id.to_le_bytes());
    v.extend_from_slice(value);
    v
}

pub fn f32_tensor(name: &str, n: u64, offset: u64) -> RawTensor {
    RawTensor {
        name: name.as_bytes().to_vec(),
        dims: vec![n],
        type_id: 0,
        offset,
    }
}

impl RawGguf {
    /// Two F32 tensors of 8 elements ("a" at 0, "b" at 32), one string key.
    pub fn small() -> RawGguf {
        RawGguf {
            magic: *b"GGUF",
            version: 3,
            n_tensors: None,
            n_kv: None,
            kvs: vec![kv("general.architecture", 8, &gguf_str(b"llama"))],
            tensors: vec![f32_tensor("a", 8, 0), f32_tensor("b", 8, 32)],
            alignment: 32,
            data: (0..64u8).collect(),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut v = self.magic.to_vec();
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(
            &self
                .n_tensors
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
        v.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            v.extend_from_slice(kv);
        }
        for t in &self.tensors {
            v.extend_from_slice(&gguf_str(&t.name));
            v.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                v.extend_from_slice(&d.to_le_bytes());
            }
            v.extend_from_slice(&t.type_id.to_le_bytes());
            v.extend_from_slice(&t.offset.to_le_bytes());
        }
        while v.len() as u64 % self.alignment != 0 {
            v.push(0);
        }
        v.extend_from_slice(&self.data);
        v
    }
}
