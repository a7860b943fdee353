//! Special tokens, add-bos/eos flags and chat templates (`tokenizer_config.json`,
//! `special_tokens_map.json`, `config.json` `*_token_id`), following gguf-py's SpecialVocab.

use super::{token_type, TokenizerModel, Vocab};
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialKind {
    Bos,
    Eos,
    Unk,
    Sep,
    Pad,
    Mask,
}

impl SpecialKind {
    pub const ALL: [SpecialKind; 6] = [
        SpecialKind::Bos,
        SpecialKind::Eos,
        SpecialKind::Unk,
        SpecialKind::Sep,
        SpecialKind::Pad,
        SpecialKind::Mask,
    ];

    /// Short name as used in `{typ}_token` / `{typ}_token_id` HF keys.
    pub fn hf_name(self) -> &'static str {
        match self {
            SpecialKind::Bos => "bos",
            SpecialKind::Eos => "eos",
            SpecialKind::Unk => "unk",
            SpecialKind::Sep => "sep",
            SpecialKind::Pad => "pad",
            SpecialKind::Mask => "mask",
        }
    }

    pub fn gguf_key(self) -> &'static str {
        match self {
            SpecialKind::Bos => "tokenizer.ggml.bos_token_id",
            SpecialKind::Eos => "tokenizer.ggml.eos_token_id",
            SpecialKind::Unk => "tokenizer.ggml.unknown_token_id",
            // sic: llama.cpp's key is misspelled.
            SpecialKind::Sep => "tokenizer.ggml.seperator_token_id",
            SpecialKind::Pad => "tokenizer.ggml.padding_token_id",
            SpecialKind::Mask => "tokenizer.ggml.mask_token_id",
        }
    }
}

/// Special-token facts read from an HF folder.
#[derive(Clone, Debug, Default)]
pub(crate) struct HfSpecials {
    pub ids: Vec<(SpecialKind, u32)>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_sep: Option<bool>,
    pub chat_template: Option<String>,
}

fn token_content(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

fn special_of_template_entry(v: Option<&Value>) -> Option<&str> {
    v?.get("SpecialToken")?.get("id")?.as_str()
}

/// Reads special ids and add-flags the way llama.cpp's converter does: token strings from
/// `tokenizer_config.json` resolved through `tokenizer.json`'s `added_tokens`, flags from the
/// `TemplateProcessing` post-processor then from explicit `add_*_token` entries, missing ids from
/// `config.json`.
pub(crate) fn read_specials(
    tokenizer_json: Option<&Value>,
    tokenizer_config: Option<&Value>,
    config: &Value,
    chat_template_file: Option<String>,
    n_vocab: usize,
) -> HfSpecials {
    let mut out = HfSpecials::default();
    let tc = tokenizer_config.and_then(Value::as_object);
    let tc_token = |typ: &str| {
        tc.and_then(|m| m.get(&format!("{typ}_token")))
            .and_then(token_content)
            .map(str::to_string)
    };
    let bos = tc_token("bos").or_else(|| tc_token("cls"));
    let eos = tc_token("eos").or_else(|| tc_token("sep"));
    let sep = tc_token("sep");

    if let Some(pp) = tokenizer_json
        .and_then(|t| t.get("post_processor"))
        .filter(|p| !p.is_null())
    {
        let processors: Vec<&Value> = match pp.get("processors").and_then(Value::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![pp],
        };
        for p in processors {
            if p.get("type").and_then(Value::as_str) != Some("TemplateProcessing") {
                continue;
            }
            let single = p
                .get("single")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let pair = p
                .get("pair")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut first = None;
            let mut last = None;
            if single.len() > 1 {
                first = special_of_template_entry(single.first()).map(str::to_string);
                if let Some(f) = &first {
                    out.add_bos = Some(Some(f) == bos.as_ref());
                }
                last = special_of_template_entry(single.last()).map(str::to_string);
                if let Some(l) = &last {
                    out.add_eos = Some(Some(l) == eos.as_ref());
                }
            }
            if !pair.is_empty() {
                let start = usize::from(
                    first.is_some() && special_of_template_entry(pair.first()) == first.as_deref(),
                );
                let stop = if last.is_some()
                    && special_of_template_entry(pair.last()) == last.as_deref()
                {
                    pair.len() - 1
                } else {
                    pair.len()
                };
                let inner = pair.get(start..stop).unwrap_or(&[]);
                let seq_id = |v: Option<&Value>| {
                    v.and_then(|v| v.get("Sequence"))
                        .and_then(|s| s.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                if inner.len() > 2
                    && seq_id(inner.first()).as_deref() == Some("A")
                    && seq_id(inner.last()).as_deref() == Some("B")
                {
                    let middle = &inner[1..inner.len() - 1];
                    let is_sep = |v: Option<&Value>| {
                        special_of_template_entry(v)
                            .is_some_and(|s| Some(s) == sep.as_deref() || Some(s) == eos.as_deref())
                    };
                    let mut add_sep = is_sep(middle.first()) && last.is_none();
                    if middle.len() == 2 && is_sep(middle.get(1)) {
                        add_sep = true;
                    }
                    out.add_sep = Some(add_sep);
                }
            }
        }
    }

    let added: Vec<(String, u32)> = tokenizer_json
        .and_then(|t| t.get("added_tokens"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| {
                    Some((
                        t.get("content")?.as_str()?.to_string(),
                        u32::try_from(t.get("id")?.as_u64()?).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();

    if let Some(tc) = tc {
        out.chat_template = match tc.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // A list of named templates: llama.cpp's default one goes to tokenizer.chat_template.
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => chat_template_file,
        };
        for kind in SpecialKind::ALL {
            if let Some(b) = tc
                .get(&format!("add_{}_token", kind.hf_name()))
                .and_then(Value::as_bool)
            {
                match kind {
                    SpecialKind::Bos => out.add_bos = Some(b),
                    SpecialKind::Eos => out.add_eos = Some(b),
                    SpecialKind::Sep => out.add_sep = Some(b),
                    _ => {}
                }
            }
            let content = match kind {
                SpecialKind::Bos => bos.clone(),
                SpecialKind::Eos => eos.clone(),
                _ => tc_token(kind.hf_name()),
            };
            if let Some(content) = content {
                if let Some((_, id)) = added.iter().find(|(c, _)| *c == content) {
                    push_special(&mut out.ids, kind, *id, n_vocab);
                }
            }
        }
    }
    for kind in SpecialKind::ALL {
        let key = format!("{}_token_id", kind.hf_name());
        let id = config
            .get(&key)
            .or_else(|| config.get("text_config").and_then(|t| t.get(&key)));
        if let Some(id) = id
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
        {
            push_special(&mut out.ids, kind, id, n_vocab);
        }
    }
    out
}

fn push_special(ids: &mut Vec<(SpecialKind, u32)>, kind: SpecialKind, id: u32, n_vocab: usize) {
    if (id as usize) < n_vocab && !ids.iter().any(|(k, _)| *k == kind) {
        ids.push((kind, id));
    }
}

/// llama.cpp's heuristic for added tokens that should be control tokens although the HF files
/// do not mark them special.
pub(crate) fn looks_special(token: &str) -> bool {
    matches!(token, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (token.starts_with("<|") && token.ends_with("|>"))
        || (token.starts_with("<｜") && token.ends_with("｜>"))
        || (token.starts_with("<unused") && token.ends_with('>'))
}

/// Token types that become HF "added tokens".
pub(crate) fn is_added(ty: i32) -> bool {
    ty == token_type::CONTROL || ty == token_type::USER_DEFINED
}

pub(crate) fn added_token_json(id: usize, content: &str, ty: i32) -> Value {
    json!({
        "id": id,
        "content": content,
        "single_word": false,
        "lstrip": false,
        "rstrip": false,
        "normalized": false,
        "special": ty == token_type::CONTROL,
    })
}

/// `tokenizer_config.json`: the flags and special tokens the re-import reads back, plus what
/// transformers needs to load the fast tokenizer.
pub(crate) fn tokenizer_config(v: &Vocab, model_max_length: Option<u64>) -> Value {
    let mut c = Map::new();
    for (key, val) in [
        ("add_bos_token", v.add_bos),
        ("add_eos_token", v.add_eos),
        ("add_sep_token", v.add_sep),
    ] {
        if let Some(b) = val {
            c.insert(key.into(), json!(b));
        }
    }
    if let (Some(b), TokenizerModel::Gpt2) = (v.add_space_prefix, v.model) {
        c.insert("add_prefix_space".into(), json!(b));
    }
    let mut decoder = Map::new();
    for (id, tok) in v.tokens.iter().enumerate() {
        let ty = v.token_type(id);
        if is_added(ty) {
            let mut t = added_token_json(id, tok, ty);
            if let Some(o) = t.as_object_mut() {
                o.remove("id");
            }
            decoder.insert(id.to_string(), t);
        }
    }
    c.insert("added_tokens_decoder".into(), Value::Object(decoder));
    for (kind, id) in &v.special_ids {
        if let Some(tok) = v.tokens.get(*id as usize) {
            c.insert(format!("{}_token", kind.hf_name()), json!(tok));
        }
    }
    if let Some(t) = &v.chat_template {
        c.insert("chat_template".into(), json!(t));
    }
    c.insert("clean_up_tokenization_spaces".into(), json!(false));
    if let Some(n) = model_max_length {
        c.insert("model_max_length".into(), json!(n));
    }
    c.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    Value::Object(c)
}

pub(crate) fn special_tokens_map(v: &Vocab) -> Value {
    let mut m = Map::new();
    for (kind, id) in &v.special_ids {
        if let Some(tok) = v.tokens.get(*id as usize) {
            m.insert(
                format!("{}_token", kind.hf_name()),
                json!({"content": tok, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false}),
            );
        }
    }
    Value::Object(m)
}
