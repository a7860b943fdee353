//! The vocabulary a GGUF file carries (`tokenizer.ggml.*`), with the derived facts llama.cpp
//! computes at load: token attributes, the special ids, which tokens end generation.

use super::hash::FxMap;

/// Token attributes (llama.cpp's `llama_token_attr` subset that tokenizing depends on).
pub mod attr {
    pub const UNDEFINED: u8 = 0;
    pub const UNKNOWN: u8 = 1 << 0;
    pub const UNUSED: u8 = 1 << 1;
    pub const NORMAL: u8 = 1 << 2;
    pub const CONTROL: u8 = 1 << 3;
    pub const USER_DEFINED: u8 = 1 << 4;
    pub const BYTE: u8 = 1 << 5;

    /// From `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte).
    pub fn from_type(t: i32) -> u8 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

/// Token texts that end a turn or a document in the model families llama.cpp knows; marked
/// end-of-generation (and control) whatever their stored type.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Names of the fill-in-the-middle pad, repository and file-separator tokens.
const FIM_TEXTS: [&[&str]; 3] = [
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &[
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
    ],
    &["<|file_sep|>"],
];

pub struct Vocab {
    pub texts: Vec<String>,
    pub attrs: Vec<u8>,
    pub scores: Vec<f32>,
    /// Text → id; for duplicated texts the last id wins, as in llama.cpp.
    pub ids: FxMap<String, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    /// Sorted.
    pub eog: Vec<u32>,
}

/// What the loader read, before the derived facts.
pub struct VocabParts {
    pub texts: Vec<String>,
    pub types: Option<Vec<i32>>,
    pub scores: Option<Vec<f32>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    /// Fill-in-the-middle pad / repository / file-separator ids from the file; each that is
    /// absent is looked for by name. All three end generation.
    pub fim: [Option<u32>; 3],
    pub add_bos: bool,
    pub add_eos: bool,
}

impl Vocab {
    pub fn new(p: VocabParts) -> Vocab {
        let n = p.texts.len();
        let mut attrs: Vec<u8> = match &p.types {
            Some(t) => t.iter().map(|&t| attr::from_type(t)).collect(),
            None => vec![attr::NORMAL; n],
        };
        let mut ids = FxMap::default();
        ids.reserve(n);
        for (i, t) in p.texts.iter().enumerate() {
            ids.insert(t.clone(), i as u32);
        }
        let valid = |id: Option<u32>| id.filter(|&i| (i as usize) < n);
        let (bos, eos, unk) = (valid(p.bos), valid(p.eos), valid(p.unk));

        let mut eog: Vec<u32> = Vec::new();
        for text in EOG_TEXTS {
            if let Some(&id) = ids.get(*text) {
                eog.push(id);
                attrs[id as usize] |= attr::CONTROL;
            }
        }
        eog.extend([eos, valid(p.eot), valid(p.eom)].into_iter().flatten());
        for (given, names) in p.fim.iter().zip(FIM_TEXTS) {
            let found = valid(*given).or_else(|| names.iter().find_map(|t| ids.get(*t).copied()));
            if let Some(id) = found {
                eog.push(id);
                attrs[id as usize] |= attr::CONTROL;
            }
        }
        // Control tokens named "unused…" are placeholders; llama.cpp tags them so.
        for (i, t) in p.texts.iter().enumerate() {
            if attrs[i] & attr::CONTROL != 0 && t.contains("unused") {
                attrs[i] |= attr::UNUSED;
            }
        }
        eog.sort_unstable();
        eog.dedup();

        Vocab {
            scores: p.scores.unwrap_or_else(|| vec![0.0; n]),
            texts: p.texts,
            attrs,
            ids,
            bos,
            eos,
            unk,
            add_bos: p.add_bos,
            add_eos: p.add_eos,
            eog,
        }
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    #[inline]
    pub fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub fn attr(&self, id: u32) -> u8 {
        self.attrs
            .get(id as usize)
            .copied()
            .unwrap_or(attr::UNDEFINED)
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }
}
