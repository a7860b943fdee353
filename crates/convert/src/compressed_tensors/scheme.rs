//! The `quantization_config` of a compressed-tensors folder (what llm-compressor writes and vLLM
//! and transformers read), reduced to what lowbit writes and reads: one config group of integer
//! weights for every `Linear`, optionally with int8 input activations, the LM head ignored.
//!
//! Layout facts (compressed-tensors 0.19): `int-quantized` stores an int8 `weight` (the signed
//! code) with `weight_scale` `[out, 1]` or `[out, in/g]`; `pack-quantized` stores the codes
//! offset by `2^(b−1)` and densely packed into int32 words along each row (`weight_packed`), plus
//! `weight_shape` (int64 `[out, in]`). Asymmetric schemes add `weight_zero_point` (signed; int8
//! unpacked in `int-quantized`, packed along the output dimension in `pack-quantized`); symmetric
//! ones store none. Static activations add `input_scale` `[1]` (and `input_zero_point` when
//! asymmetric). Dequantization is `(q − zero) · scale` in the scale's dtype.

use serde_json::{json, Value};

/// How a weight's (scale, zero point) are shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightStrategy {
    /// One per output channel (row).
    Channel,
    /// One per `g` consecutive input columns of a row.
    Group(usize),
}

/// How input activations are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationStrategy {
    /// One range for the whole tensor, fixed from calibration (`input_scale`).
    StaticTensor { symmetric: bool },
    /// Symmetric, one scale per token computed at run time.
    DynamicToken,
}

/// The storage format, which compressed-tensors picks from the scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtFormat {
    /// int8 codes as int8 tensors (W8A8 and W8A16 with 8-bit weights).
    IntQuantized,
    /// Codes of 1–8 bits densely packed into int32 words (W4A16, W8A16).
    PackQuantized,
}

impl CtFormat {
    pub fn name(self) -> &'static str {
        match self {
            CtFormat::IntQuantized => "int-quantized",
            CtFormat::PackQuantized => "pack-quantized",
        }
    }
}

/// One compressed-tensors scheme as lowbit writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtScheme {
    pub bits: u8,
    pub symmetric: bool,
    pub weights: WeightStrategy,
    pub activations: Option<ActivationStrategy>,
    pub format: CtFormat,
    /// Columns carry their group in `weight_g_idx` (GPTQ's act-order with `actorder: "group"`).
    pub group_index: bool,
}

impl CtScheme {
    /// `w8a8` (static per-tensor activations), `w8a8-dynamic`, `w8a16`, `w4a16`, with `-gG` for a
    /// group size (weights per channel without it) and `-asym` for asymmetric weights:
    /// `w4a16-g128`, `w4a16-g64-asym`. int8 weights with int8 activations are `int-quantized`
    /// (what llm-compressor writes for W8A8); weight-only schemes are `pack-quantized`.
    pub fn parse(s: &str) -> Result<CtScheme, String> {
        let lower = s.to_ascii_lowercase();
        let mut parts = lower.split('-');
        let head = parts.next().unwrap_or_default();
        let (bits, act_bits) = match head {
            "w8a8" => (8, 8),
            "w8a16" => (8, 16),
            "w4a16" => (4, 16),
            _ => return Err(format!("scheme {s:?}: expected w8a8, w8a8-dynamic, w8a16 or w4a16[-gG][-asym]")),
        };
        let (mut group, mut symmetric, mut dynamic) = (None, true, false);
        for p in parts {
            match p {
                "dynamic" if act_bits == 8 => dynamic = true,
                "asym" => symmetric = false,
                "sym" => symmetric = true,
                g if g.starts_with('g') => {
                    let n: usize = g[1..]
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("scheme {s:?}: {g:?} is not a group size"))?;
                    group = Some(n);
                }
                other => return Err(format!("scheme {s:?}: unknown part {other:?}")),
            }
        }
        let activations = (act_bits == 8).then_some(if dynamic {
            ActivationStrategy::DynamicToken
        } else {
            ActivationStrategy::StaticTensor { symmetric: true }
        });
        Ok(CtScheme {
            bits,
            symmetric,
            weights: group.map_or(WeightStrategy::Channel, WeightStrategy::Group),
            activations,
            format: if activations.is_some() && bits == 8 {
                CtFormat::IntQuantized
            } else {
                CtFormat::PackQuantized
            },
            group_index: false,
        })
    }

    /// The scheme's name as [`CtScheme::parse`] reads it.
    pub fn name(&self) -> String {
        let mut s = match (self.bits, self.activations) {
            (8, Some(_)) => "w8a8".to_string(),
            (b, Some(_)) => format!("w{b}a8"),
            (b, None) => format!("w{b}a16"),
        };
        if self.activations == Some(ActivationStrategy::DynamicToken) {
            s.push_str("-dynamic");
        }
        if let WeightStrategy::Group(g) = self.weights {
            s.push_str(&format!("-g{g}"));
        }
        if !self.symmetric {
            s.push_str("-asym");
        }
        s
    }

    /// Columns per (scale, zero) group in rows of `cols`.
    pub fn group_len(&self, cols: usize) -> usize {
        match self.weights {
            WeightStrategy::Channel => cols,
            WeightStrategy::Group(g) => g,
        }
    }

    /// The `quantization_config` object for config.json.
    pub fn to_config(&self) -> Value {
        let (strategy, group_size) = match self.weights {
            WeightStrategy::Channel => ("channel", Value::Null),
            WeightStrategy::Group(g) => ("group", json!(g)),
        };
        let weights = json!({
            "actorder": null, "block_structure": null, "dynamic": false,
            "group_size": group_size, "num_bits": self.bits, "observer": "minmax",
            "observer_kwargs": {}, "scale_dtype": null, "strategy": strategy,
            "symmetric": self.symmetric, "type": "int", "zp_dtype": null,
        });
        let input = match self.activations {
            None => Value::Null,
            Some(a) => {
                let (dynamic, strategy, symmetric, observer) = match a {
                    ActivationStrategy::StaticTensor { symmetric } => (false, "tensor", symmetric, json!("minmax")),
                    ActivationStrategy::DynamicToken => (true, "token", true, Value::Null),
                };
                json!({
                    "actorder": null, "block_structure": null, "dynamic": dynamic,
                    "group_size": null, "num_bits": 8, "observer": observer,
                    "observer_kwargs": {}, "scale_dtype": null, "strategy": strategy,
                    "symmetric": symmetric, "type": "int", "zp_dtype": null,
                })
            }
        };
        json!({
            "config_groups": {
                "group_0": {
                    "format": self.format.name(),
                    "input_activations": input,
                    "output_activations": null,
                    "targets": ["Linear"],
                    "weights": weights,
                }
            },
            "format": self.format.name(),
            "global_compression_ratio": null,
            "ignore": ["lm_head"],
            "kv_cache_scheme": null,
            "quant_method": "compressed-tensors",
            "quantization_status": "compressed",
            "sparsity_config": {},
            "transform_config": {},
            "version": "0.19.0",
        })
    }

    /// Reads a `quantization_config`; every field lowbit does not support is named with its
    /// value (`quantization_config.config_groups.group_0.weights.strategy = "block"`).
    pub fn from_config(q: &Value) -> Result<CtScheme, String> {
        let at = |path: &str| -> Option<&Value> {
            path.split('.').try_fold(q, |v, k| v.get(k))
        };
        let bad = |path: &str, v: &Value, why: &str| {
            Err(format!("quantization_config.{path} = {v}: {why}"))
        };
        let method = at("quant_method").cloned().unwrap_or(Value::Null);
        if method != json!("compressed-tensors") {
            return bad("quant_method", &method, "lowbit reads compressed-tensors folders");
        }
        let status = at("quantization_status").cloned().unwrap_or(Value::Null);
        if status != json!("compressed") {
            return bad("quantization_status", &status, "only compressed checkpoints store quantized tensors");
        }
        if let Some(s) = at("sparsity_config").filter(|v| v.as_object().is_some_and(|o| !o.is_empty())) {
            return bad("sparsity_config", s, "sparse checkpoints are not supported");
        }
        if let Some(t) = at("transform_config").filter(|v| v.as_object().is_some_and(|o| !o.is_empty())) {
            return bad("transform_config", t, "rotated (transformed) checkpoints are not supported");
        }
        if let Some(k) = at("kv_cache_scheme").filter(|v| !v.is_null()) {
            return bad("kv_cache_scheme", k, "quantized KV caches are not supported");
        }
        let groups = at("config_groups").and_then(Value::as_object).ok_or_else(|| {
            "quantization_config.config_groups is missing".to_string()
        })?;
        if groups.len() != 1 {
            return Err(format!(
                "quantization_config.config_groups has {} groups: lowbit reads one scheme for every Linear",
                groups.len()
            ));
        }
        let (gname, g) = groups.iter().next().expect("one group");
        let gpath = format!("config_groups.{gname}");
        let targets = g.get("targets").cloned().unwrap_or(Value::Null);
        if targets != json!(["Linear"]) {
            return bad(&format!("{gpath}.targets"), &targets, "lowbit reads schemes that target every Linear");
        }
        if let Some(o) = g.get("output_activations").filter(|v| !v.is_null()) {
            return bad(&format!("{gpath}.output_activations"), o, "output quantization is not supported");
        }
        let format = g
            .get("format")
            .or_else(|| at("format"))
            .cloned()
            .unwrap_or(Value::Null);
        let format = match format.as_str() {
            Some("int-quantized") | Some("naive-quantized") => CtFormat::IntQuantized,
            Some("pack-quantized") => CtFormat::PackQuantized,
            _ => return bad(&format!("{gpath}.format"), &format, "lowbit reads int-quantized and pack-quantized"),
        };
        let w = g.get("weights").filter(|v| !v.is_null()).ok_or_else(|| {
            format!("quantization_config.{gpath}.weights is missing: nothing is quantized")
        })?;
        let wpath = format!("{gpath}.weights");
        let field = |o: &Value, k: &str| o.get(k).cloned().unwrap_or(Value::Null);
        let ty = field(w, "type");
        if ty != json!("int") {
            return bad(&format!("{wpath}.type"), &ty, "lowbit reads integer weights");
        }
        let bits = field(w, "num_bits");
        let bits = match bits.as_u64() {
            Some(b @ 2..=8) => b as u8,
            _ => return bad(&format!("{wpath}.num_bits"), &bits, "2 to 8 bits are supported"),
        };
        if format == CtFormat::IntQuantized && bits != 8 {
            return bad(&format!("{wpath}.num_bits"), &json!(bits), "int-quantized stores int8 codes");
        }
        let symmetric = field(w, "symmetric").as_bool().unwrap_or(true);
        // Activation order changes only how GPTQ swept the columns; "group" also stores each
        // column's group (`weight_g_idx`), which the reader applies.
        let actorder = field(w, "actorder");
        let group_index = match actorder.as_str() {
            None if actorder.is_null() || actorder == json!(false) => false,
            Some("static") | Some("weight") => false,
            Some("group") => true,
            _ => return bad(&format!("{wpath}.actorder"), &actorder, "lowbit reads null, static, weight and group"),
        };
        let blocks = field(w, "block_structure");
        if !blocks.is_null() {
            return bad(&format!("{wpath}.block_structure"), &blocks, "block-wise scales are not supported");
        }
        if field(w, "dynamic") == json!(true) {
            return bad(&format!("{wpath}.dynamic"), &json!(true), "weights must be stored quantized");
        }
        let strategy = field(w, "strategy");
        let weights = match strategy.as_str() {
            Some("channel") => WeightStrategy::Channel,
            Some("group") => match field(w, "group_size").as_u64() {
                Some(n) if n > 0 => WeightStrategy::Group(n as usize),
                _ => return bad(&format!("{wpath}.group_size"), &field(w, "group_size"), "a group strategy needs a positive group size"),
            },
            _ => return bad(&format!("{wpath}.strategy"), &strategy, "lowbit reads channel and group weights"),
        };
        let activations = match g.get("input_activations").filter(|v| !v.is_null()) {
            None => None,
            Some(a) => {
                let apath = format!("{gpath}.input_activations");
                let (ty, bits) = (field(a, "type"), field(a, "num_bits"));
                if ty != json!("int") || bits != json!(8) {
                    return bad(&format!("{apath}.num_bits"), &bits, "lowbit runs int8 activations");
                }
                let sym = field(a, "symmetric").as_bool().unwrap_or(true);
                let strat = field(a, "strategy");
                Some(match (field(a, "dynamic").as_bool().unwrap_or(false), strat.as_str()) {
                    (false, Some("tensor")) => ActivationStrategy::StaticTensor { symmetric: sym },
                    (true, Some("token")) if sym => ActivationStrategy::DynamicToken,
                    _ => return bad(&format!("{apath}.strategy"), &strat, "lowbit runs static per-tensor and dynamic symmetric per-token activations"),
                })
            }
        };
        Ok(CtScheme {
            bits,
            symmetric,
            weights,
            activations,
            format,
            group_index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip_through_the_config() {
        for s in ["w8a8", "w8a8-dynamic", "w8a16", "w4a16-g128", "w4a16-g64-asym", "w8a16-g32"] {
            let scheme = CtScheme::parse(s).unwrap();
            assert_eq!(scheme.name(), s);
            assert_eq!(CtScheme::from_config(&scheme.to_config()).unwrap(), scheme, "{s}");
        }
        assert_eq!(CtScheme::parse("w8a8").unwrap().format, CtFormat::IntQuantized);
        assert_eq!(CtScheme::parse("w4a16-g128").unwrap().format, CtFormat::PackQuantized);
        assert!(CtScheme::parse("w3a16").is_err());
        assert!(CtScheme::parse("w4a16-dynamic").is_err());
        assert!(CtScheme::parse("w4a16-g0").is_err());
    }

    #[test]
    fn unsupported_fields_are_named_with_their_value() {
        let mut c = CtScheme::parse("w4a16-g128").unwrap().to_config();
        c["config_groups"]["group_0"]["weights"]["strategy"] = json!("block");
        let e = CtScheme::from_config(&c).unwrap_err();
        assert!(e.contains("config_groups.group_0.weights.strategy = \"block\""), "{e}");
        let mut c = CtScheme::parse("w8a8").unwrap().to_config();
        c["quant_method"] = json!("gptq");
        assert!(CtScheme::from_config(&c).unwrap_err().contains("quant_method = \"gptq\""));
        let mut c = CtScheme::parse("w8a8").unwrap().to_config();
        c["config_groups"]["group_0"]["input_activations"]["num_bits"] = json!(4);
        assert!(CtScheme::from_config(&c).unwrap_err().contains("input_activations.num_bits = 4"));
        let mut c = CtScheme::parse("w4a16-g64").unwrap().to_config();
        c["config_groups"]["group_0"]["weights"]["actorder"] = json!("group");
        assert!(CtScheme::from_config(&c).unwrap().group_index);
        c["config_groups"]["group_0"]["weights"]["actorder"] = json!("static");
        assert!(!CtScheme::from_config(&c).unwrap().group_index);
    }
}
