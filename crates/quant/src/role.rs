//! What a tensor does in the network, read from its GGUF name. Mixes spend bits by role.

/// The roles the type mixes distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    TokenEmbd,
    Output,
    AttnV,
    AttnOutput,
    AttnQkv,
    FfnDown,
    /// Any other matrix (q, k, gate, up, …).
    OtherMatrix,
    /// Norms, biases, scalars, rope factors, router weights: never quantized.
    Keep,
}

/// Substrings of tensors that stay in their source type even when 2-D: quantizing them saves
/// nothing and hurts (routers, norms, positional tables).
const NEVER_QUANTIZE: &[&str] = &[
    "_norm.weight",
    "ffn_gate_inp.weight",
    "rope_freqs",
    "position_embd",
    "pos_embd",
];

/// Classifies a GGUF tensor by name and number of dimensions.
pub fn role_of(name: &str, n_dims: usize) -> Role {
    if n_dims < 2 || !name.ends_with(".weight") || NEVER_QUANTIZE.iter().any(|s| name.contains(s)) {
        return Role::Keep;
    }
    match name {
        "token_embd.weight" => Role::TokenEmbd,
        "output.weight" => Role::Output,
        _ if name.contains("attn_v.weight") => Role::AttnV,
        _ if name.contains("attn_output.weight") => Role::AttnOutput,
        _ if name.contains("attn_qkv.weight") => Role::AttnQkv,
        _ if name.contains("ffn_down") => Role::FfnDown,
        _ => Role::OtherMatrix,
    }
}

/// The block index in `blk.N.…`, if any.
pub fn layer_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("blk.")?;
    rest.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_gguf_names() {
        assert_eq!(role_of("blk.3.attn_v.weight", 2), Role::AttnV);
        assert_eq!(role_of("blk.3.attn_norm.weight", 1), Role::Keep);
        assert_eq!(role_of("blk.3.attn_q_norm.weight", 2), Role::Keep);
        assert_eq!(role_of("blk.3.attn_q.bias", 1), Role::Keep);
        assert_eq!(role_of("blk.0.ffn_down.weight", 2), Role::FfnDown);
        assert_eq!(role_of("blk.0.ffn_gate.weight", 2), Role::OtherMatrix);
        assert_eq!(role_of("token_embd.weight", 2), Role::TokenEmbd);
        assert_eq!(layer_of("blk.17.ffn_up.weight"), Some(17));
        assert_eq!(layer_of("output.weight"), None);
    }
}
