//! Single-turn chat prompts. Rather than run the Jinja template stored in
//! `tokenizer.chat_template`, the engine recognises the two families it knows by their marker
//! tokens and writes the same text those templates produce for one user message.

use lowbit_files::GgufFile;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen). Some templates insert a default
    /// system message when none is given; it is kept so answers match the reference tools.
    ChatMl { default_system: Option<String> },
    /// `<start_of_turn>user\n…<end_of_turn>\n<start_of_turn>model\n` (Gemma).
    Gemma,
}

impl ChatTemplate {
    /// The template named by the file's `tokenizer.chat_template`, if it is one we know.
    pub fn from_gguf(f: &GgufFile) -> Option<ChatTemplate> {
        let t = f.get("tokenizer.chat_template")?.as_str()?;
        Self::detect(t)
    }

    pub fn detect(template: &str) -> Option<ChatTemplate> {
        if template.contains("<start_of_turn>") {
            return Some(ChatTemplate::Gemma);
        }
        if template.contains("<|im_start|>") {
            let marker = "<|im_start|>system\n";
            let default_system = template.find(marker).and_then(|i| {
                let rest = &template[i + marker.len()..];
                let end = rest.find("<|im_end|>")?;
                let s = &rest[..end];
                // Only a literal message counts; a Jinja expression is the user's own system text.
                (!s.contains("{{") && !s.contains("{%")).then(|| s.to_owned())
            });
            return Some(ChatTemplate::ChatMl { default_system });
        }
        None
    }

    /// The prompt text for one user turn, ending where the model's answer begins. BOS is not
    /// included: the tokenizer adds it when the vocabulary asks for it.
    pub fn format(&self, user: &str) -> String {
        match self {
            ChatTemplate::ChatMl { default_system } => {
                let mut s = String::new();
                if let Some(sys) = default_system {
                    s.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
                }
                s.push_str(&format!(
                    "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
                ));
                s
            }
            ChatTemplate::Gemma => {
                format!("<start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n")
            }
        }
    }

    /// The text that ends the model's turn.
    pub fn end_marker(&self) -> &'static str {
        match self {
            ChatTemplate::ChatMl { .. } => "<|im_end|>",
            ChatTemplate::Gemma => "<end_of_turn>",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_chatml_with_default_system() {
        let t = "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe nice<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}";
        let c = ChatTemplate::detect(t).unwrap();
        assert_eq!(
            c,
            ChatTemplate::ChatMl {
                default_system: Some("Be nice".into())
            }
        );
        assert_eq!(
            c.format("Hi"),
            "<|im_start|>system\nBe nice<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn recognises_gemma_and_rejects_unknown() {
        let c = ChatTemplate::detect("{{ '<start_of_turn>' + role + '\n' }}").unwrap();
        assert_eq!(
            c.format("Q"),
            "<start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(ChatTemplate::detect("[INST] {{ content }} [/INST]"), None);
    }
}
