//! compressed-tensors checkpoints (llm-compressor's output, vLLM's and transformers' input):
//! the scheme in `config.json`'s `quantization_config` ([`scheme`]), the int32 packing
//! ([`pack`]), one quantized module's tensors ([`linear`]), and reading a whole folder as the
//! float tensors it stands for ([`CtFolder`]) so that every command that takes an HF folder
//! takes a quantized one too.

pub mod linear;
pub mod pack;
pub mod scheme;

pub use linear::{InputRange, QuantizedLinear};
pub use scheme::{ActivationStrategy, CtFormat, CtScheme, WeightStrategy};

use lowbit_files::hf::HfModel;
use std::collections::BTreeMap;

/// Tensor-name suffixes that belong to a quantized module rather than being tensors of their own.
const PARAM_SUFFIXES: [&str; 7] = [
    "weight_packed",
    "weight_scale",
    "weight_zero_point",
    "weight_shape",
    "weight_g_idx",
    "input_scale",
    "input_zero_point",
];

/// How a folder's checkpoint rounds the activations at every quantized module's input.
#[derive(Clone, Debug, PartialEq)]
pub enum FolderActivations {
    /// Fixed ranges, by the GGUF name of the module's weight (`blk.0.attn_q.weight`).
    Static(BTreeMap<String, InputRange>),
    /// Symmetric int8 per token, computed at run time.
    DynamicToken,
}

/// The quantized modules of a compressed-tensors folder.
#[derive(Clone, Debug)]
pub struct CtFolder {
    pub scheme: CtScheme,
    /// Module prefix → (rows, cols) of its weight.
    pub modules: BTreeMap<String, (usize, usize)>,
}

impl CtFolder {
    /// Reads the folder's `quantization_config`, if it has one, and finds its quantized modules.
    pub fn detect(model: &HfModel) -> Result<Option<CtFolder>, String> {
        let Some(q) = model.config_get("quantization_config") else {
            return Ok(None);
        };
        let scheme = CtScheme::from_config(q)?;
        let mut modules = BTreeMap::new();
        for (_, t) in model.tensors() {
            let Some(prefix) = t.name.strip_suffix(".weight_scale") else { continue };
            let shape = match scheme.format {
                CtFormat::IntQuantized => model.tensor(&format!("{prefix}.weight")).map(|(_, w)| w.shape.clone()),
                CtFormat::PackQuantized => {
                    let name = format!("{prefix}.weight_shape");
                    match model.tensor(&name) {
                        Some((shard, info)) => {
                            let dims = linear::int_values(info.dtype, shard.tensor_data(info)).ok_or_else(|| {
                                format!("{name} is {}: expected an integer tensor", info.dtype.name())
                            })?;
                            Some(dims.into_iter().map(|d| d.max(0) as u64).collect())
                        }
                        None => None,
                    }
                }
            };
            match shape.as_deref() {
                Some(&[r, c]) if r > 0 && c > 0 && r <= 1 << 24 && c <= 1 << 24 => {
                    modules.insert(prefix.to_string(), (r as usize, c as usize));
                }
                Some(s) => return Err(format!("{prefix}: weight shape {s:?} is not two positive dimensions")),
                None => {
                    let what = if scheme.format == CtFormat::IntQuantized { "weight" } else { "weight_shape" };
                    return Err(format!("{prefix}.{what} is missing ({prefix}.weight_scale is there)"));
                }
            }
        }
        if modules.is_empty() {
            return Err(format!(
                "quantization_config says {} but no tensor has a weight_scale: nothing is quantized",
                scheme.name()
            ));
        }
        Ok(Some(CtFolder { scheme, modules }))
    }

    /// The tensors the folder stands for: every stored tensor but the quantization parameters,
    /// each quantized module as one float `weight` of its original shape (int-quantized folders
    /// store it under that name already, as int8).
    pub fn logical_tensors(&self, model: &HfModel) -> Vec<(String, Vec<u64>)> {
        let mut out: Vec<(String, Vec<u64>)> = model
            .tensors()
            .filter(|(_, t)| !self.is_parameter(&t.name))
            .map(|(_, t)| (t.name.clone(), t.shape.clone()))
            .collect();
        for (prefix, &(r, c)) in &self.modules {
            if self.scheme.format == CtFormat::PackQuantized {
                out.push((format!("{prefix}.weight"), vec![r as u64, c as u64]));
            }
        }
        out
    }

    fn is_parameter(&self, name: &str) -> bool {
        match name.rsplit_once('.') {
            Some((prefix, s)) => self.modules.contains_key(prefix) && PARAM_SUFFIXES.contains(&s),
            None => false,
        }
    }

    /// The module whose weight `name` (`….weight`) is, if it is quantized.
    pub fn module_of<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_suffix(".weight").filter(|p| self.modules.contains_key(*p))
    }

    /// Reads one quantized module.
    pub fn read(&self, model: &HfModel, prefix: &str) -> Result<QuantizedLinear, String> {
        let q = QuantizedLinear::decode(&self.scheme, prefix, &lookup(model))?;
        if (q.rows, q.cols) != self.modules[prefix] {
            return Err(format!("{prefix}: weight is {}x{}, its weight_shape says {:?}", q.rows, q.cols, self.modules[prefix]));
        }
        Ok(q)
    }

    /// Static activation ranges by module prefix (empty for weight-only and dynamic schemes).
    pub fn input_ranges(&self, model: &HfModel) -> Result<BTreeMap<String, InputRange>, String> {
        let mut out = BTreeMap::new();
        if !matches!(self.scheme.activations, Some(ActivationStrategy::StaticTensor { .. })) {
            return Ok(out);
        }
        let get = lookup(model);
        for prefix in self.modules.keys() {
            if let Some(r) = QuantizedLinear::decode_input(&self.scheme, prefix, &get)? {
                out.insert(prefix.clone(), r);
            }
        }
        Ok(out)
    }
}

/// A folder's tensors as [`QuantizedLinear::decode`] asks for them.
fn lookup<'m>(model: &'m HfModel) -> impl Fn(&str) -> Option<(lowbit_files::safetensors::Dtype, Vec<u64>, &'m [u8])> + 'm {
    move |n: &str| {
        model
            .tensor(n)
            .map(|(shard, info)| (info.dtype, info.shape.clone(), shard.tensor_data(info)))
    }
}
