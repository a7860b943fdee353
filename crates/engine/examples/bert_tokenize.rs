//! Prints the WordPiece ids of every line of a text file as a JSON array per line, to compare
//! lowbit's tokenizer with another implementation:
//! `cargo run --release -p lowbit-engine --example bert_tokenize -- MODEL_DIR FILE`.

use lowbit_engine::bert::{SentenceConfig, WordPiece};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err("usage: bert_tokenize MODEL_DIR FILE".into());
    }
    let hf = lowbit_files::HfModel::open(&args[1])?;
    let cfg = lowbit_engine::bert::BertConfig::from_hf(&hf)?;
    let sc = SentenceConfig::from_hf(&hf, &cfg)?;
    let path = Path::new(&args[1]).join("tokenizer.json");
    let json = hf.load_tokenizer_json()?.ok_or("no tokenizer.json")?;
    let tok = WordPiece::from_tokenizer_json(&json, &path)?;
    for line in std::fs::read_to_string(&args[2])?.lines() {
        println!("{:?}", tok.encode(line, sc.max_tokens));
    }
    Ok(())
}
