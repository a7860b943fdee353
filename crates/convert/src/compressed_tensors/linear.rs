//! One quantized `Linear` of a compressed-tensors folder: its codes, scales and zero points in
//! lowbit's unsigned form, and their translation to and from the folder's tensors.

use super::pack::{pack_columns, pack_row, packed_words, unpack_columns, unpack_row};
use super::scheme::{ActivationStrategy, CtFormat, CtScheme};
use crate::transform::Transform;
use lowbit_files::safetensors::Dtype;

/// A static activation range: `x ≈ (clamp(round(x / scale) + zero, −128, 127) − zero) · scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputRange {
    pub scale: f32,
    /// Signed, as the folder stores it (0 for symmetric ranges).
    pub zero: i8,
}

/// A quantized weight in HF orientation (`rows` = output features).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedLinear {
    pub rows: usize,
    pub cols: usize,
    pub bits: u8,
    /// Unsigned codes `0..2^bits`, row-major; value = `(code − zero) · scale`.
    pub codes: Vec<u8>,
    /// `rows × groups`, row-major.
    pub scales: Vec<f32>,
    /// Unsigned zero points, parallel to `scales` (`2^(bits−1)` for symmetric weights).
    pub zeros: Vec<u8>,
    /// Set for static activation schemes.
    pub input: Option<InputRange>,
    /// The dtype scales are stored in; dequantized values are rounded to it, as the reader's
    /// `(q − zero) · scale` in that dtype does.
    pub scale_dtype: Dtype,
    /// Each column's group when they are not consecutive (`weight_g_idx`, GPTQ act-order).
    pub g_idx: Option<Vec<u32>>,
}

/// One tensor of the folder: name suffix (after the module prefix), dtype, shape, bytes.
pub struct CtTensor {
    pub suffix: &'static str,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub bytes: Vec<u8>,
}

/// What [`QuantizedLinear::decode`] needs of a folder: a tensor's dtype, shape and bytes.
pub type TensorLookup<'a> = dyn Fn(&str) -> Option<(Dtype, Vec<u64>, &'a [u8])> + 'a;

/// The values of an I32 or I64 tensor (shapes and group indices are stored as either).
pub fn int_values(dt: Dtype, bytes: &[u8]) -> Option<Vec<i64>> {
    match dt {
        Dtype::I64 => Some(bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()),
        Dtype::I32 => Some(bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64).collect()),
        _ => None,
    }
}

impl QuantizedLinear {
    pub fn groups_per_row(&self) -> usize {
        self.scales.len() / self.rows.max(1)
    }

    /// The values the checkpoint stands for, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let g = self.cols / self.groups_per_row().max(1);
        let round: fn(f32) -> f32 = match self.scale_dtype {
            Dtype::BF16 => |v| half::bf16::from_f32(v).to_f32(),
            Dtype::F16 => |v| half::f16::from_f32(v).to_f32(),
            _ => |v| v,
        };
        let gpr = self.groups_per_row();
        let group_of = |j: usize| match &self.g_idx {
            Some(ix) => ix[j] as usize,
            None => j / g,
        };
        self.codes
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (r, j) = (i / self.cols, i % self.cols);
                let k = r * gpr + group_of(j);
                round((c as f32 - self.zeros[k] as f32) * self.scales[k])
            })
            .collect()
    }

    /// Reorders rows with an export transform (LLaMA's Q/K head permutation): codes, scales and
    /// zero points move with their row.
    pub fn invert_rows(&mut self, name: &str, t: &Transform) -> crate::Result<()> {
        self.move_rows(name, t, false)
    }

    /// Reorders rows as reading the folder into GGUF order does (the inverse of
    /// [`invert_rows`](Self::invert_rows)).
    pub fn apply_rows(&mut self, name: &str, t: &Transform) -> crate::Result<()> {
        self.move_rows(name, t, true)
    }

    fn move_rows(&mut self, name: &str, t: &Transform, forward: bool) -> crate::Result<()> {
        if *t == Transform::Identity {
            return Ok(());
        }
        if !matches!(t, Transform::RopeInterleave { .. }) {
            return Err(crate::ConvertError::BadTensor {
                name: name.into(),
                reason: format!("{t:?} cannot be applied to quantized codes"),
            });
        }
        let rows = self.rows;
        let go = |v: &mut [f32]| if forward { t.apply(name, v, rows) } else { t.invert(name, v, rows) };
        let mut codes: Vec<f32> = self.codes.iter().map(|&c| c as f32).collect();
        go(&mut codes)?;
        self.codes = codes.iter().map(|&c| c as u8).collect();
        go(&mut self.scales)?;
        let mut zeros: Vec<f32> = self.zeros.iter().map(|&z| z as f32).collect();
        go(&mut zeros)?;
        self.zeros = zeros.iter().map(|&z| z as u8).collect();
        Ok(())
    }

    /// Signed int8 codes and one scale per row, when this is symmetric int8 per output channel
    /// in natural column order (what integer W8A8 products take); `None` otherwise.
    pub fn int8_per_row(&self) -> Option<(Vec<i8>, Vec<f32>)> {
        let ok = self.bits == 8 && self.groups_per_row() == 1 && self.g_idx.is_none() && self.zeros.iter().all(|&z| z == 128);
        ok.then(|| (self.codes.iter().map(|&c| (c as i16 - 128) as i8).collect(), self.scales.clone()))
    }

    /// The folder's tensors for this module under `scheme`.
    pub fn encode(&self, scheme: &CtScheme) -> Vec<CtTensor> {
        let (rows, cols, bits) = (self.rows, self.cols, self.bits);
        let gpr = self.groups_per_row() as u64;
        let off = 1u8 << (bits - 1);
        let mut out = Vec::new();
        match scheme.format {
            CtFormat::IntQuantized => out.push(CtTensor {
                suffix: "weight",
                dtype: Dtype::I8,
                shape: vec![rows as u64, cols as u64],
                bytes: self.codes.iter().map(|&c| c.wrapping_sub(off)).collect(),
            }),
            CtFormat::PackQuantized => {
                let mut words = Vec::with_capacity(rows * packed_words(cols, bits));
                for row in self.codes.chunks_exact(cols) {
                    pack_row(row, bits, &mut words);
                }
                out.push(CtTensor {
                    suffix: "weight_packed",
                    dtype: Dtype::I32,
                    shape: vec![rows as u64, packed_words(cols, bits) as u64],
                    bytes: words.iter().flat_map(|w| w.to_le_bytes()).collect(),
                });
                out.push(CtTensor {
                    suffix: "weight_shape",
                    dtype: Dtype::I64,
                    shape: vec![2],
                    bytes: [rows as i64, cols as i64].iter().flat_map(|v| v.to_le_bytes()).collect(),
                });
            }
        }
        out.push(CtTensor {
            suffix: "weight_scale",
            dtype: Dtype::F32,
            shape: vec![rows as u64, gpr],
            bytes: self.scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
        });
        if !scheme.symmetric {
            out.push(match scheme.format {
                CtFormat::IntQuantized => CtTensor {
                    suffix: "weight_zero_point",
                    dtype: Dtype::I8,
                    shape: vec![rows as u64, gpr],
                    bytes: self.zeros.iter().map(|&z| z.wrapping_sub(off)).collect(),
                },
                CtFormat::PackQuantized => {
                    let words = pack_columns(&self.zeros, rows, gpr as usize, bits);
                    CtTensor {
                        suffix: "weight_zero_point",
                        dtype: Dtype::I32,
                        shape: vec![packed_words(rows, bits) as u64, gpr],
                        bytes: words.iter().flat_map(|w| w.to_le_bytes()).collect(),
                    }
                }
            });
        }
        if let (Some(ActivationStrategy::StaticTensor { symmetric }), Some(r)) = (scheme.activations, self.input) {
            out.push(CtTensor {
                suffix: "input_scale",
                dtype: Dtype::F32,
                shape: vec![1],
                bytes: r.scale.to_le_bytes().to_vec(),
            });
            if !symmetric {
                out.push(CtTensor {
                    suffix: "input_zero_point",
                    dtype: Dtype::I8,
                    shape: vec![1],
                    bytes: vec![r.zero as u8],
                });
            }
        }
        out
    }

    /// The static activation range of the module at `prefix` (None for weight-only and dynamic
    /// schemes), without reading its weight.
    pub fn decode_input(scheme: &CtScheme, prefix: &str, get: &TensorLookup<'_>) -> Result<Option<InputRange>, String> {
        let need = |s: &str| get(&format!("{prefix}.{s}")).ok_or_else(|| format!("{prefix}.{s} is missing"));
        Ok(match scheme.activations {
            Some(ActivationStrategy::StaticTensor { symmetric }) => {
                let (dt, shape, bytes) = need("input_scale")?;
                let scale = match (dt, bytes.len()) {
                    (Dtype::F32, 4) => f32::from_le_bytes(bytes.try_into().expect("4 bytes")),
                    (Dtype::F16, 2) => half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(),
                    (Dtype::BF16, 2) => half::bf16::from_le_bytes([bytes[0], bytes[1]]).to_f32(),
                    _ => return Err(format!("{prefix}.input_scale is {} {shape:?}: expected one float (per-tensor activations)", dt.name())),
                };
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err(format!("{prefix}.input_scale = {scale}: must be positive and finite"));
                }
                let zero = if symmetric {
                    0
                } else {
                    match need("input_zero_point")? {
                        (Dtype::I8, _, [z]) => *z as i8,
                        (dt, s, _) => return Err(format!("{prefix}.input_zero_point is {} {s:?}: expected one I8", dt.name())),
                    }
                };
                Some(InputRange { scale, zero })
            }
            _ => None,
        })
    }

    /// Reads the module at `prefix` (`model.layers.0.self_attn.q_proj`); every shape is checked
    /// against the scheme, and a missing or malformed tensor is named.
    pub fn decode(scheme: &CtScheme, prefix: &str, get: &TensorLookup<'_>) -> Result<QuantizedLinear, String> {
        let need = |s: &str| get(&format!("{prefix}.{s}")).ok_or_else(|| format!("{prefix}.{s} is missing"));
        let bits = scheme.bits;
        let off = 1u8 << (bits - 1);
        let shape_err = |s: &str, found: &[u64], expected: String| {
            Err(format!("{prefix}.{s} has shape {found:?}, expected {expected} for {}", scheme.name()))
        };
        let (rows, cols, codes) = match scheme.format {
            CtFormat::IntQuantized => {
                let (dt, shape, bytes) = need("weight")?;
                if dt != Dtype::I8 || shape.len() != 2 {
                    return Err(format!("{prefix}.weight is {} {shape:?}: int-quantized stores a 2-d I8 tensor", dt.name()));
                }
                let (rows, cols) = (shape[0] as usize, shape[1] as usize);
                (rows, cols, bytes.iter().map(|&b| b.wrapping_add(off)).collect::<Vec<u8>>())
            }
            CtFormat::PackQuantized => {
                let (dt, shape, bytes) = need("weight_shape")?;
                let dims = int_values(dt, bytes)
                    .ok_or_else(|| format!("{prefix}.weight_shape is {}: expected an integer tensor", dt.name()))?;
                if shape != [2] || dims.iter().any(|&d| d <= 0 || d > 1 << 24) {
                    return Err(format!("{prefix}.weight_shape = {dims:?}: expected two positive dimensions"));
                }
                let (rows, cols) = (dims[0] as usize, dims[1] as usize);
                let (dt, shape, bytes) = need("weight_packed")?;
                let pw = packed_words(cols, bits);
                if dt != Dtype::I32 {
                    return Err(format!("{prefix}.weight_packed is {}: expected I32", dt.name()));
                }
                if shape != [rows as u64, pw as u64] {
                    return shape_err("weight_packed", &shape, format!("[{rows}, {pw}] (weight_shape {rows}x{cols})"));
                }
                let words: Vec<u32> = bytes.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
                let mut codes = Vec::with_capacity(rows * cols);
                for row in words.chunks_exact(pw) {
                    unpack_row(row, bits, cols, &mut codes);
                }
                (rows, cols, codes)
            }
        };
        let g = scheme.group_len(cols);
        if g == 0 || cols % g != 0 {
            return Err(format!("{prefix}: groups of {g} do not split rows of {cols}"));
        }
        let gpr = cols / g;
        let (dt, shape, bytes) = need("weight_scale")?;
        if shape != [rows as u64, gpr as u64] {
            return shape_err("weight_scale", &shape, format!("[{rows}, {gpr}]"));
        }
        let scales: Vec<f32> = match dt {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            _ => return Err(format!("{prefix}.weight_scale is {}: expected a float tensor", dt.name())),
        };
        if let Some(i) = scales.iter().position(|s| !s.is_finite()) {
            return Err(format!("{prefix}.weight_scale[{i}] = {} is not finite", scales[i]));
        }
        let zeros = if scheme.symmetric {
            vec![off; rows * gpr]
        } else {
            let (zdt, zshape, zbytes) = need("weight_zero_point")?;
            match (scheme.format, zdt) {
                (CtFormat::IntQuantized, Dtype::I8) if zshape == [rows as u64, gpr as u64] => {
                    zbytes.iter().map(|&b| b.wrapping_add(off)).collect()
                }
                (CtFormat::PackQuantized, Dtype::I32) if zshape == [packed_words(rows, bits) as u64, gpr as u64] => {
                    let words: Vec<u32> = zbytes.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
                    unpack_columns(&words, rows, gpr, bits)
                }
                _ => return Err(format!("{prefix}.weight_zero_point is {} {zshape:?}: does not match {} for a {rows}x{cols} weight", zdt.name(), scheme.name())),
            }
        };
        let g_idx = match get(&format!("{prefix}.weight_g_idx")) {
            None if scheme.group_index => return Err(format!("{prefix}.weight_g_idx is missing (actorder \"group\")")),
            None => None,
            Some((dt, shape, bytes)) => {
                if shape != [cols as u64] {
                    return shape_err("weight_g_idx", &shape, format!("[{cols}]"));
                }
                let ix = int_values(dt, bytes)
                    .ok_or_else(|| format!("{prefix}.weight_g_idx is {}: expected an integer tensor", dt.name()))?;
                if let Some(j) = ix.iter().position(|&v| v < 0 || v as usize >= gpr) {
                    return Err(format!("{prefix}.weight_g_idx[{j}] = {}: groups are 0..{gpr}", ix[j]));
                }
                Some(ix.into_iter().map(|v| v as u32).collect())
            }
        };
        let input = Self::decode_input(scheme, prefix, get)?;
        Ok(QuantizedLinear { rows, cols, bits, codes, scales, zeros, input, scale_dtype: dt, g_idx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    type Stored = HashMap<String, (Dtype, Vec<u64>, Vec<u8>)>;

    fn stored(q: &QuantizedLinear, scheme: &CtScheme) -> Stored {
        q.encode(scheme)
            .into_iter()
            .map(|t| (format!("m.{}", t.suffix), (t.dtype, t.shape, t.bytes)))
            .collect()
    }

    fn sample(bits: u8, symmetric: bool, g: usize) -> QuantizedLinear {
        let (rows, cols) = (8, 64);
        let gpr = cols / g;
        let off = 1u8 << (bits - 1);
        QuantizedLinear {
            rows,
            cols,
            bits,
            codes: (0..rows * cols).map(|i| ((i * 7 + 3) % (1 << bits)) as u8).collect(),
            scales: (0..rows * gpr).map(|i| 0.01 + i as f32 * 1e-3).collect(),
            zeros: (0..rows * gpr).map(|i| if symmetric { off } else { (i % (1 << bits)) as u8 }).collect(),
            input: Some(InputRange { scale: 0.05, zero: if symmetric { 0 } else { -3 } }),
            scale_dtype: Dtype::F32,
            g_idx: None,
        }
    }

    #[test]
    fn every_scheme_round_trips_through_its_tensors() {
        for s in ["w8a8", "w8a8-dynamic", "w8a16", "w4a16-g32", "w4a16-g16-asym", "w8a16-g32-asym"] {
            let mut scheme = CtScheme::parse(s).unwrap();
            let q = sample(scheme.bits, scheme.symmetric, scheme.group_len(64));
            let tensors = stored(&q, &scheme);
            let get = |n: &str| tensors.get(n).map(|(d, s, b)| (*d, s.clone(), b.as_slice()));
            let back = QuantizedLinear::decode(&scheme, "m", &get).unwrap();
            let mut expect = q.clone();
            if scheme.activations != Some(ActivationStrategy::StaticTensor { symmetric: true }) {
                expect.input = None;
            }
            assert_eq!(back, expect, "{s}");
            // An asymmetric static range keeps its zero point.
            scheme.activations = Some(ActivationStrategy::StaticTensor { symmetric: false });
            if scheme.format == CtFormat::IntQuantized {
                let t = stored(&q, &scheme);
                let get = |n: &str| t.get(n).map(|(d, s, b)| (*d, s.clone(), b.as_slice()));
                assert_eq!(QuantizedLinear::decode(&scheme, "m", &get).unwrap().input, q.input);
            }
        }
    }

    #[test]
    fn int8_codes_are_stored_signed_and_dequantize_as_q_minus_zero_times_scale() {
        let scheme = CtScheme::parse("w8a8").unwrap();
        let mut q = sample(8, true, 64);
        q.codes[0] = 0; // −128
        q.codes[1] = 255; // 127
        let t = q.encode(&scheme);
        assert_eq!((t[0].bytes[0] as i8, t[0].bytes[1] as i8), (-128, 127));
        let v = q.dequantize();
        assert_eq!(v[0], -128.0 * q.scales[0]);
        assert_eq!(v[1], 127.0 * q.scales[0]);
    }

    #[test]
    fn a_group_index_assigns_columns_to_groups() {
        let scheme = CtScheme::parse("w4a16-g32").unwrap();
        let mut q = sample(4, true, 32);
        let mut tensors = stored(&q, &scheme);
        // Columns alternate between the two groups.
        let ix: Vec<i32> = (0..64).map(|j| j % 2).collect();
        tensors.insert("m.weight_g_idx".into(), (Dtype::I32, vec![64], ix.iter().flat_map(|v| v.to_le_bytes()).collect()));
        let get = |n: &str| tensors.get(n).map(|(d, s, b)| (*d, s.clone(), b.as_slice()));
        let back = QuantizedLinear::decode(&scheme, "m", &get).unwrap();
        q.g_idx = Some(ix.iter().map(|&v| v as u32).collect());
        q.input = None;
        assert_eq!(back, q);
        let v = back.dequantize();
        assert_eq!(v[1], (q.codes[1] as f32 - q.zeros[1] as f32) * q.scales[1]);
        assert_eq!(v[2], (q.codes[2] as f32 - q.zeros[0] as f32) * q.scales[0]);
    }

    #[test]
    fn shapes_that_disagree_with_the_config_are_named() {
        let scheme = CtScheme::parse("w4a16-g32").unwrap();
        let q = sample(4, true, 32);
        let mut tensors = stored(&q, &scheme);
        tensors.get_mut("m.weight_scale").unwrap().1 = vec![8, 4];
        let get = |n: &str| tensors.get(n).map(|(d, s, b)| (*d, s.clone(), b.as_slice()));
        let e = QuantizedLinear::decode(&scheme, "m", &get).unwrap_err();
        assert!(e.contains("m.weight_scale has shape [8, 4], expected [8, 2]"), "{e}");
        tensors.remove("m.weight_scale");
        let get = |n: &str| tensors.get(n).map(|(d, s, b)| (*d, s.clone(), b.as_slice()));
        assert!(QuantizedLinear::decode(&scheme, "m", &get).unwrap_err().contains("m.weight_scale is missing"));
    }
}
