//! `lowbit generate --model M --prompt P`: text generation, streamed token by token.

use anyhow::{bail, Context, Result};
use lowbit_engine::model::chat::ChatTemplate;
use lowbit_engine::sampler::{Sampler, SamplerConfig};
use lowbit_engine::Model;
use super::model_file::{set_threads, ActivationsArg, ModelFile};
use lowbit_files::gguf::GgufFile;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The model: a GGUF file or a Hugging Face folder.
    #[arg(long)]
    model: PathBuf,
    /// The prompt (the user's message with --chat).
    #[arg(long)]
    prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 64)]
    n: usize,
    /// Sampling temperature; 0 picks the most likely token every time.
    #[arg(long, default_value_t = 0.0)]
    temp: f32,
    /// Sample among the K most likely tokens only (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Sample among the most likely tokens whose probabilities add up to P.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Wrap the prompt in the model's chat template (ChatML or Gemma turns).
    #[arg(long)]
    chat: bool,
    /// Context size (prompt plus generated tokens).
    #[arg(long, default_value_t = 2048)]
    ctx: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// How activations meet quantized weights (`q8` computes as llama.cpp does).
    #[arg(long, value_enum, default_value_t)]
    activations: ActivationsArg,
    /// W8A8: round activations and multiply in f32 (fake quantization) instead of the int8 ×
    /// int8 products — the same activation codes; a folder's weights are then read as
    /// transformers dequantizes them (rounded to its scale dtype). Slower; to compare.
    #[arg(long)]
    fake_quant: bool,
}

pub fn run(args: Args) -> Result<()> {
    set_threads(args.threads)?;
    let mf = ModelFile::open(&args.model)?;
    let file = &mf.file;
    let mut model =
        Model::load(file).with_context(|| format!("cannot load {}", args.model.display()))?;
    super::model_file::apply_folder_activations(&mf, &mut model, !args.fake_quant)?;
    model.matmul = args.activations.options();
    let tok = Tokenizer::load(file)?;
    let (prompt, end_marker) = if args.chat {
        let t = ChatTemplate::from_gguf(file)
            .context("the model's chat template is not one lowbit knows (ChatML or Gemma)")?;
        (t.format(&args.prompt), Some(t.end_marker()))
    } else {
        (args.prompt.clone(), None)
    };
    let end_id = end_marker.and_then(|m| tok.token_id(m));
    let tokens = if args.chat {
        tok.encode_chat(&prompt)?
    } else {
        tok.encode(&prompt, true)?
    };
    if tokens.is_empty() {
        bail!("the prompt is empty");
    }
    if tokens.len() + args.n > args.ctx {
        bail!(
            "{} prompt tokens plus {} to generate exceed the context of {} (raise --ctx)",
            tokens.len(),
            args.n,
            args.ctx
        );
    }
    let mut cache = model.new_cache(args.ctx);
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    });
    let t0 = Instant::now();
    let mut logits = model.forward(&tokens, &mut cache, tokens.len() - 1)?;
    let t_prompt = t0.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if !args.chat {
        write!(out, "{}", args.prompt)?;
    }
    let mut pending = Vec::new();
    let t1 = Instant::now();
    let mut generated = 0;
    for _ in 0..args.n {
        let next = sampler.sample(&logits);
        if tok.is_end(next) || Some(next) == end_id {
            break;
        }
        generated += 1;
        tok.piece(next, &mut pending);
        // Print whole UTF-8 characters only: a character may span several byte tokens.
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        out.write_all(&pending[..valid])?;
        out.flush()?;
        pending.drain(..valid);
        logits = model.forward(&[next], &mut cache, 0)?;
    }
    out.write_all(&pending)?;
    writeln!(out)?;
    let t_gen = t1.elapsed().as_secs_f64();
    eprintln!(
        "prompt: {} tokens, {:.1} tokens/s; generated: {} tokens, {:.1} tokens/s",
        tokens.len(),
        tokens.len() as f64 / t_prompt.max(1e-9),
        generated,
        generated as f64 / t_gen.max(1e-9)
    );
    Ok(())
}

/// The CLI's view of the engine's tokenizer.
pub(crate) struct Tokenizer {
    inner: lowbit_engine::tokenizer::Tokenizer,
}

impl Tokenizer {
    pub(crate) fn load(file: &GgufFile) -> Result<Tokenizer> {
        let inner = lowbit_engine::tokenizer::Tokenizer::from_gguf(file)
            .context("cannot build the model's tokenizer")?;
        Ok(Tokenizer { inner })
    }

    /// Plain text: control-token spellings in it stay text, as llama-perplexity tokenizes.
    pub(crate) fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, add_special, false)?)
    }

    /// A chat prompt: the template's markers must become their control tokens.
    fn encode_chat(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, true, true)?)
    }

    fn token_id(&self, text: &str) -> Option<u32> {
        match self.inner.encode(text, false, true).ok()?.as_slice() {
            [id] => Some(*id),
            _ => None,
        }
    }

    /// The BOS id when the vocabulary puts one at the start of a text.
    pub(crate) fn bos_to_add(&self) -> Option<u32> {
        if self.inner.adds_bos() {
            self.inner.bos()
        } else {
            None
        }
    }

    fn is_end(&self, id: u32) -> bool {
        self.inner.is_eog(id)
    }

    fn piece(&self, id: u32, out: &mut Vec<u8>) {
        if let Ok(p) = self.inner.token_to_piece(id, false) {
            out.extend_from_slice(&p);
        }
    }
}
