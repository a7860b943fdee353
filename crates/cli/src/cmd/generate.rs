//! `lowbit generate --model M --prompt P`: text generation, streamed token by token.

use anyhow::{bail, Context, Result};
use lowbit_engine::model::chat::ChatTemplate;
use lowbit_engine::sampler::{Sampler, SamplerConfig};
use lowbit_engine::Model;
use lowbit_files::gguf::GgufFile;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model.
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
}

pub fn run(args: Args) -> Result<()> {
    super::perplexity::set_threads(args.threads)?;
    let file = GgufFile::open(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let model =
        Model::load(&file).with_context(|| format!("cannot load {}", args.model.display()))?;
    let tok = Tokenizer::load(&file)?;
    let (prompt, end_marker) = if args.chat {
        let t = ChatTemplate::from_gguf(&file)
            .context("the model's chat template is not one lowbit knows (ChatML or Gemma)")?;
        (t.format(&args.prompt), Some(t.end_marker()))
    } else {
        (args.prompt.clone(), None)
    };
    let end_id = end_marker.and_then(|m| tok.token_id(m));
    let tokens = tok.encode(&prompt, true)?;
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

/// The BOS id when the vocabulary asks for one at the start of a text.
pub(crate) fn bos_to_add(file: &GgufFile) -> Option<u32> {
    let add = match file
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.as_bool())
    {
        Some(b) => b,
        // llama.cpp's default: SentencePiece vocabularies add BOS, BPE ones do not.
        None => file.get("tokenizer.ggml.model").and_then(|v| v.as_str()) == Some("llama"),
    };
    if !add {
        return None;
    }
    file.get("tokenizer.ggml.bos_token_id")
        .and_then(|v| v.to_u64())
        .map(|v| v as u32)
}

/// Tokenizes a whole text as llama.cpp does for evaluation (BOS when the vocabulary adds it).
pub(crate) fn tokenize(file: &GgufFile, text: &str, add_special: bool) -> Result<Vec<u32>> {
    Tokenizer::load(file)?.encode(text, add_special)
}

/// The CLI's view of the engine's tokenizer.
struct Tokenizer {
    _private: (),
}

impl Tokenizer {
    fn load(_file: &GgufFile) -> Result<Tokenizer> {
        bail!("this build has no tokenizer yet")
    }

    fn encode(&self, _text: &str, _add_special: bool) -> Result<Vec<u32>> {
        bail!("this build has no tokenizer yet")
    }

    fn token_id(&self, _text: &str) -> Option<u32> {
        None
    }

    fn is_end(&self, _id: u32) -> bool {
        false
    }

    fn piece(&self, _id: u32, _out: &mut Vec<u8>) {}
}
