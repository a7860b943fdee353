//! Chooses one type per tensor: the preset's mix, then user overrides, then a fallback when a
//! row does not split into whole blocks.
//!
//! The mix rules follow the intent of llama.cpp's `_S/_M/_L` presets (docs/QUANT_MIXES.md lists
//! them). The fallback is lowbit's own: llama.cpp replaces a 256-block type by a *bigger* 32-block
//! type (Q4_K → Q5_0, 5.5 bpw), so a model with 576- or 640-wide rows silently grows; lowbit keeps
//! the bit budget (Q4_K → IQ4_NL at the same 4.5 bpw) and reports every tensor that fell back.

use crate::preset::Preset;
use crate::role::{layer_of, role_of, Role};
pub use lowbit_formats::fallback::{fallback_for, fit_row};
use lowbit_formats::GgmlType;
use regex::Regex;

/// What the planner needs to know about one tensor.
#[derive(Clone, Debug)]
pub struct TensorDesc {
    pub name: String,
    /// ggml order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    pub source: GgmlType,
}

/// Model-wide facts the mixes depend on.
#[derive(Clone, Debug, Default)]
pub struct ModelFacts {
    pub n_layer: usize,
    /// Query heads per key/value head (1 without grouped-query attention).
    pub n_gqa: usize,
    /// True when the model has no `output.weight` and reuses the token embedding.
    pub tied_embeddings: bool,
    pub has_imatrix: bool,
}

/// User choices that shape the plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub preset: Preset,
    /// `--pure`: every quantizable tensor gets the base type (fallback still applies).
    pub pure: bool,
    /// `--tensor-type REGEX=TYPE`, first match wins, applied after the mix.
    pub overrides: Vec<(Regex, GgmlType)>,
}

/// The decision for one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorPlan {
    pub name: String,
    pub target: GgmlType,
    /// The type the mix or an override asked for, when a fallback replaced it.
    pub fell_back_from: Option<GgmlType>,
    /// True when the tensor is copied in its source type.
    pub keep: bool,
}

/// Plans every tensor of a model.
pub fn plan(tensors: &[TensorDesc], facts: &ModelFacts, opts: &PlanOptions) -> Vec<TensorPlan> {
    tensors.iter().map(|t| plan_one(t, facts, opts)).collect()
}

fn plan_one(t: &TensorDesc, facts: &ModelFacts, opts: &PlanOptions) -> TensorPlan {
    let role = role_of(&t.name, t.dims.len());
    if role == Role::Keep && !opts.overrides.iter().any(|(re, _)| re.is_match(&t.name)) {
        // Norms and biases keep full precision (a quantized 1-D source is widened to F32).
        let target = if t.source.block_elems() == 1 {
            t.source
        } else {
            GgmlType::F32
        };
        return TensorPlan {
            name: t.name.clone(),
            target,
            fell_back_from: None,
            keep: target == t.source,
        };
    }
    let wanted = opts
        .overrides
        .iter()
        .find(|(re, _)| re.is_match(&t.name))
        .map(|(_, ty)| *ty)
        .unwrap_or_else(|| {
            if opts.pure {
                opts.preset.base_type()
            } else {
                mix_type(opts.preset, role, layer_of(&t.name), facts, t.dims[0])
            }
        });
    let row = t.dims.first().copied().unwrap_or(1);
    let target = fit_row(wanted, row);
    TensorPlan {
        name: t.name.clone(),
        target,
        fell_back_from: (target != wanted).then_some(wanted),
        keep: target == t.source,
    }
}

/// llama.cpp's "more bits" layers: the first and last eighth, and every third layer between.
fn more_bits(layer: usize, n_layer: usize) -> bool {
    let (l, n) = (layer as i64, n_layer as i64);
    l < n / 8 || l >= 7 * n / 8 || (l - n / 8).rem_euclid(3) == 2
}

/// The mix: which type a tensor of `role` in `layer` gets under `preset`.
fn mix_type(
    preset: Preset,
    role: Role,
    layer: Option<usize>,
    f: &ModelFacts,
    row: u64,
) -> GgmlType {
    use GgmlType as T;
    use Preset as P;
    let base = preset.base_type();
    let first_eighth = layer.is_some_and(|l| l < f.n_layer / 8);
    let more = layer.is_some_and(|l| more_bits(l, f.n_layer));
    let is_float = matches!(base, T::F32 | T::F16 | T::BF16);
    let output_like = role == Role::Output || (role == Role::TokenEmbd && f.tied_embeddings);
    if output_like {
        // The output projection is the most sensitive matrix: 6 bits unless the user asked for
        // more; 8 bits when its rows do not fit 256-element blocks.
        return if is_float || base == T::Q8_0 {
            base
        } else if row % 256 != 0 {
            T::Q8_0
        } else {
            T::Q6_K
        };
    }
    match (role, preset) {
        (Role::AttnV, P::Q2_K) => {
            if f.n_gqa >= 4 {
                T::Q4_K
            } else {
                T::Q3_K
            }
        }
        (Role::AttnV, P::Q2_K_S) if f.n_gqa >= 4 => T::Q4_K,
        (Role::AttnV, P::Q3_K_M) => {
            if layer.is_some_and(|l| l < 2) {
                T::Q5_K
            } else {
                T::Q4_K
            }
        }
        (Role::AttnV, P::Q3_K_L) => T::Q5_K,
        (Role::AttnV, P::Uniform(T::IQ4_NL | T::IQ4_XS)) if f.n_gqa >= 4 => T::Q5_K,
        (Role::AttnV, P::Q4_K_M | P::Q5_K_M) if more => T::Q6_K,
        (Role::AttnV, P::Q4_K_S) if layer.is_some_and(|l| l < 4) => T::Q5_K,
        (Role::FfnDown, P::Q2_K) => T::Q3_K,
        (Role::FfnDown, P::Q2_K_S) if first_eighth => T::Q4_K,
        (Role::FfnDown, P::Q3_K_M) => {
            if layer.is_some_and(|l| l < f.n_layer / 16) {
                T::Q5_K
            } else {
                T::Q4_K
            }
        }
        (Role::FfnDown, P::Q3_K_L) => T::Q5_K,
        (Role::FfnDown, P::Q4_K_M | P::Q5_K_M) if more => T::Q6_K,
        (Role::FfnDown, P::Q4_K_S) if first_eighth => T::Q5_K,
        (Role::FfnDown, P::Uniform(T::IQ4_NL | T::IQ4_XS)) if first_eighth && !f.has_imatrix => {
            T::Q5_K
        }
        (Role::FfnDown, P::Uniform(T::Q4_0)) if first_eighth && f.has_imatrix => T::Q4_1,
        (Role::FfnDown, P::Uniform(T::Q5_0)) if first_eighth && f.has_imatrix => T::Q5_1,
        (Role::AttnOutput, P::Q2_K) => T::Q3_K,
        (Role::AttnOutput, P::Q3_K_M) => T::Q4_K,
        (Role::AttnOutput, P::Q3_K_L) => T::Q5_K,
        (Role::AttnQkv, P::Q3_K_M | P::Q3_K_L) => T::Q4_K,
        (Role::AttnQkv, P::Q4_K_M) => T::Q5_K,
        (Role::AttnQkv, P::Q5_K_M) => T::Q6_K,
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str, dims: &[u64]) -> TensorDesc {
        TensorDesc {
            name: name.into(),
            dims: dims.to_vec(),
            source: GgmlType::F32,
        }
    }

    fn opts(preset: Preset) -> PlanOptions {
        PlanOptions {
            preset,
            pure: false,
            overrides: vec![],
        }
    }

    /// A 32-layer model with 4096-wide rows, like the 7B models llama.cpp's mixes were tuned on.
    fn llama7b() -> (Vec<TensorDesc>, ModelFacts) {
        let mut t = vec![
            desc("token_embd.weight", &[4096, 32000]),
            desc("output.weight", &[4096, 32000]),
        ];
        for l in 0..32 {
            t.push(desc(&format!("blk.{l}.attn_norm.weight"), &[4096]));
            t.push(desc(&format!("blk.{l}.attn_v.weight"), &[4096, 4096]));
            t.push(desc(&format!("blk.{l}.ffn_down.weight"), &[11008, 4096]));
            t.push(desc(&format!("blk.{l}.ffn_up.weight"), &[4096, 11008]));
        }
        (
            t,
            ModelFacts {
                n_layer: 32,
                n_gqa: 1,
                tied_embeddings: false,
                has_imatrix: false,
            },
        )
    }

    fn target(plans: &[TensorPlan], name: &str) -> GgmlType {
        plans.iter().find(|p| p.name == name).unwrap().target
    }

    #[test]
    fn q4_k_m_spends_more_bits_where_llama_cpp_does() {
        let (t, f) = llama7b();
        let p = plan(&t, &f, &opts(Preset::Q4_K_M));
        assert_eq!(target(&p, "output.weight"), GgmlType::Q6_K);
        assert_eq!(target(&p, "token_embd.weight"), GgmlType::Q4_K);
        assert_eq!(target(&p, "blk.0.attn_norm.weight"), GgmlType::F32);
        assert_eq!(target(&p, "blk.0.attn_v.weight"), GgmlType::Q6_K);
        assert_eq!(target(&p, "blk.4.attn_v.weight"), GgmlType::Q4_K);
        assert_eq!(target(&p, "blk.6.attn_v.weight"), GgmlType::Q6_K); // (6 - 4) % 3 == 2
        assert_eq!(target(&p, "blk.31.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(target(&p, "blk.10.ffn_up.weight"), GgmlType::Q4_K);
        let q6 = p
            .iter()
            .filter(|p| p.name.contains("ffn_down") && p.target == GgmlType::Q6_K)
            .count();
        assert_eq!(
            q6,
            4 + 4 + 8,
            "first/last eighth plus every third layer between"
        );
    }

    #[test]
    fn pure_and_overrides_take_precedence() {
        let (t, f) = llama7b();
        let mut o = opts(Preset::Q4_K_M);
        o.pure = true;
        let p = plan(&t, &f, &o);
        assert_eq!(target(&p, "output.weight"), GgmlType::Q4_K);
        assert_eq!(target(&p, "blk.0.attn_v.weight"), GgmlType::Q4_K);
        o.overrides = vec![(Regex::new("attn_v").unwrap(), GgmlType::Q8_0)];
        let p = plan(&t, &f, &o);
        assert_eq!(target(&p, "blk.3.attn_v.weight"), GgmlType::Q8_0);
    }

    #[test]
    fn narrow_rows_fall_back_without_growing_the_model() {
        let t = vec![
            desc("token_embd.weight", &[576, 49152]),
            desc("blk.0.attn_q.weight", &[576, 576]),
            desc("blk.0.ffn_down.weight", &[1536, 576]),
            desc("blk.0.attn_v.weight", &[576, 192]),
        ];
        let f = ModelFacts {
            n_layer: 30,
            n_gqa: 3,
            tied_embeddings: true,
            has_imatrix: false,
        };
        let p = plan(&t, &f, &opts(Preset::Q4_K_M));
        assert_eq!(target(&p, "token_embd.weight"), GgmlType::Q8_0);
        assert_eq!(target(&p, "blk.0.attn_q.weight"), GgmlType::IQ4_NL);
        assert_eq!(p[1].fell_back_from, Some(GgmlType::Q4_K));
        assert_eq!(target(&p, "blk.0.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(target(&p, "blk.0.attn_v.weight"), GgmlType::Q8_0);
    }
}
