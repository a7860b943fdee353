//! Hyper-parameters read from GGUF metadata (`{arch}.*` keys), with llama.cpp's defaults where a
//! key is optional.

use super::error::{ModelError, Result};
use lowbit_files::GgufFile;

/// The forward-pass families the engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// llama, mistral (and SmolLM, which ships as `llama`): rope on adjacent pairs.
    Llama,
    /// Like llama plus q/k/v biases, NeoX rope.
    Qwen2,
    /// Like llama plus per-head q/k RMS norms, NeoX rope.
    Qwen3,
    /// Gemma 3: scaled embeddings, GeGLU, sandwich norms, interleaved sliding-window layers.
    Gemma3,
}

impl Arch {
    pub fn from_name(name: &str) -> Result<Arch> {
        match name {
            "llama" | "mistral" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            "qwen3" => Ok(Arch::Qwen3),
            "gemma3" => Ok(Arch::Gemma3),
            other => Err(ModelError::UnknownArch(other.to_owned())),
        }
    }

    /// NeoX rope rotates dimension `i` with `i + n_rot/2`; the llama convention rotates adjacent
    /// pairs because the converter permuted the Q/K rows to make it so.
    pub fn rope_neox(self) -> bool {
        !matches!(self, Arch::Llama)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub arch_name: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head width of Q and K (`attention.key_length`, default n_embd / n_head).
    pub head_dim_k: usize,
    /// Per-head width of V (`attention.value_length`, default head_dim_k).
    pub head_dim_v: usize,
    /// Rotated dimensions per head (`rope.dimension_count`, default head_dim_k).
    pub n_rot: usize,
    pub rope_base: f32,
    /// Rope base of sliding-window layers (gemma3: `rope.freq_base_swa`, default 10000).
    pub rope_base_swa: f32,
    pub rms_eps: f32,
    /// Sliding-window width; `None` when every layer attends to the whole context.
    pub sliding_window: Option<usize>,
    /// Every `swa_period`-th layer (the last of each period) is global; the others slide.
    pub swa_period: usize,
    /// Scale applied to Q before attention.
    pub attn_scale: f32,
    /// Training context (`context_length`), informational.
    pub context_length: usize,
}

impl Config {
    pub fn from_gguf(f: &GgufFile) -> Result<Config> {
        let arch_name = f
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ModelError::MissingKey {
                key: "general.architecture".into(),
            })?
            .to_owned();
        let arch = Arch::from_name(&arch_name)?;
        let k = Keys {
            f,
            arch: &arch_name,
        };
        let n_layer = k.req_usize("block_count")?;
        let n_embd = k.req_usize("embedding_length")?;
        let n_head = k.req_usize("attention.head_count")?;
        let n_head_kv = k.opt_usize("attention.head_count_kv")?.unwrap_or(n_head);
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(ModelError::BadKey {
                key: format!("{arch_name}.attention.head_count_kv"),
                why: format!("{n_head} heads cannot be shared by {n_head_kv} KV heads"),
            });
        }
        let head_dim_k = k
            .opt_usize("attention.key_length")?
            .unwrap_or(n_embd / n_head);
        let head_dim_v = k.opt_usize("attention.value_length")?.unwrap_or(head_dim_k);
        let n_rot = k.opt_usize("rope.dimension_count")?.unwrap_or(head_dim_k);
        if n_rot > head_dim_k || n_rot % 2 != 0 {
            return Err(ModelError::BadKey {
                key: format!("{arch_name}.rope.dimension_count"),
                why: format!("{n_rot} rotated dimensions in heads of {head_dim_k}"),
            });
        }
        let rope_base = k.opt_f32("rope.freq_base")?.unwrap_or(10000.0);
        let rms_eps = k.req_f32("attention.layer_norm_rms_epsilon")?;
        let (sliding_window, swa_period, rope_base_swa) = match arch {
            Arch::Gemma3 => {
                let w = k.opt_usize("attention.sliding_window")?.filter(|&w| w > 0);
                let period = k
                    .opt_usize("attention.sliding_window_pattern")?
                    .unwrap_or(6);
                (
                    w,
                    period.max(1),
                    k.opt_f32("rope.freq_base_swa")?.unwrap_or(10000.0),
                )
            }
            _ => (None, 1, rope_base),
        };
        // Gemma's 27B scales queries by the model width per head; the others by the key width.
        let attn_scale = 1.0 / (head_dim_k as f32).sqrt();
        let context_length = k.opt_usize("context_length")?.unwrap_or(0);
        Ok(Config {
            arch,
            arch_name,
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            head_dim_k,
            head_dim_v,
            n_rot,
            rope_base,
            rope_base_swa,
            rms_eps,
            sliding_window,
            swa_period,
            attn_scale,
            context_length,
        })
    }

    /// Whether layer `il` uses the sliding window (llama.cpp: all but the last of each period).
    pub fn is_swa(&self, il: usize) -> bool {
        self.sliding_window.is_some() && il % self.swa_period < self.swa_period - 1
    }

    pub fn layer_rope_base(&self, il: usize) -> f32 {
        if self.is_swa(il) {
            self.rope_base_swa
        } else {
            self.rope_base
        }
    }
}

struct Keys<'a> {
    f: &'a GgufFile,
    arch: &'a str,
}

impl Keys<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    fn opt_usize(&self, suffix: &str) -> Result<Option<usize>> {
        let key = self.key(suffix);
        match self.f.get(&key) {
            None => Ok(None),
            Some(v) => {
                // Some converters store per-layer arrays; a uniform array is as good as a scalar.
                let x = v.to_u64().or_else(|| {
                    let a = v
                        .as_u32_array()
                        .map(|a| a.iter().map(|&x| x as u64).collect::<Vec<_>>())
                        .or_else(|| {
                            v.as_i32_array()
                                .map(|a| a.iter().map(|&x| x as u64).collect())
                        })?;
                    let first = *a.first()?;
                    a.iter().all(|&x| x == first).then_some(first)
                });
                x.map(|x| Some(x as usize)).ok_or(ModelError::BadKey {
                    key,
                    why: format!("expected a non-negative integer, found {}", v.type_name()),
                })
            }
        }
    }

    fn req_usize(&self, suffix: &str) -> Result<usize> {
        let v = self
            .opt_usize(suffix)?
            .ok_or_else(|| ModelError::MissingKey {
                key: self.key(suffix),
            })?;
        if v == 0 {
            return Err(ModelError::BadKey {
                key: self.key(suffix),
                why: "must not be 0".into(),
            });
        }
        Ok(v)
    }

    fn opt_f32(&self, suffix: &str) -> Result<Option<f32>> {
        let key = self.key(suffix);
        match self.f.get(&key) {
            None => Ok(None),
            Some(v) => v
                .to_f64()
                .map(|x| Some(x as f32))
                .ok_or(ModelError::BadKey {
                    key,
                    why: format!("expected a float, found {}", v.type_name()),
                }),
        }
    }

    fn req_f32(&self, suffix: &str) -> Result<f32> {
        self.opt_f32(suffix)?.ok_or_else(|| ModelError::MissingKey {
            key: self.key(suffix),
        })
    }
}
