//! lowbit's base log-probability file (`--save-logits` / `--kld-base`).
//!
//! Layout, all little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `LOWBITLP` |
//! | 4 × u32 | version (1), n_ctx, n_vocab, n_chunk |
//! | 4 × u32 | dtype (1 = f16, 0 = f32), scored positions per chunk (`n_ctx - 1 - n_ctx/2`), 0, 0 |
//! | n_chunk · n_ctx × u32 | the evaluated tokens (before the BOS substitution) |
//! | per chunk, per scored position | n_vocab natural-log probabilities (`dtype`) |
//!
//! Log-probabilities rather than logits so a reader needs no softmax over the base; f16 keeps
//! the file at llama.cpp's size (2 bytes per entry) with a relative error of 2⁻¹¹, which moves
//! the KL divergence by far less than its statistical uncertainty.

use super::error::EvalError;
use half::f16;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LOWBITLP";
const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub n_ctx: usize,
    pub n_vocab: usize,
    pub n_chunk: usize,
    pub f16: bool,
    pub scored: usize,
}

pub struct LogitsWriter {
    path: PathBuf,
    out: BufWriter<File>,
    n_vocab: usize,
    f16: bool,
    buf: Vec<u8>,
}

impl LogitsWriter {
    pub fn create(path: &Path, h: &Header, tokens: &[u32]) -> Result<LogitsWriter, EvalError> {
        let file = File::create(path).map_err(|e| EvalError::io(path, "creating", e))?;
        let mut w = LogitsWriter {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
            n_vocab: h.n_vocab,
            f16: h.f16,
            buf: Vec::new(),
        };
        let mut head = Vec::with_capacity(40);
        head.extend_from_slice(MAGIC);
        for v in [VERSION, h.n_ctx as u32, h.n_vocab as u32, h.n_chunk as u32] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        for v in [u32::from(h.f16), h.scored as u32, 0, 0] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend(tokens.iter().flat_map(|t| t.to_le_bytes()));
        w.write(&head)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), EvalError> {
        let path = &self.path;
        self.out
            .write_all(bytes)
            .map_err(|e| EvalError::io(path, "writing", e))
    }

    /// Appends one position's log-probabilities.
    pub fn push(&mut self, log_probs: &[f32]) -> Result<(), EvalError> {
        debug_assert_eq!(log_probs.len(), self.n_vocab);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if self.f16 {
            buf.extend(
                log_probs
                    .iter()
                    .flat_map(|&v| f16::from_f32(v).to_le_bytes()),
            );
        } else {
            buf.extend(log_probs.iter().flat_map(|&v| v.to_le_bytes()));
        }
        let r = self.write(&buf);
        self.buf = buf;
        r
    }

    pub fn finish(mut self) -> Result<(), EvalError> {
        let path = self.path.clone();
        self.out
            .flush()
            .map_err(|e| EvalError::io(&path, "writing", e))
    }
}

pub struct LogitsReader {
    path: PathBuf,
    input: BufReader<File>,
    pub header: Header,
    pub tokens: Vec<u32>,
    buf: Vec<u8>,
}

impl LogitsReader {
    pub fn open(path: &Path) -> Result<LogitsReader, EvalError> {
        let file = File::open(path).map_err(|e| EvalError::io(path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| EvalError::io(path, "reading", e))?
            .len();
        let mut input = BufReader::with_capacity(1 << 20, file);
        let bad = |why: String| EvalError::BadLogitsFile {
            path: path.to_owned(),
            why,
        };
        let mut head = [0u8; 40];
        input
            .read_exact(&mut head)
            .map_err(|_| bad("shorter than its header".into()))?;
        if &head[..8] != MAGIC {
            return Err(bad("wrong magic".into()));
        }
        let u =
            |i: usize| u32::from_le_bytes(head[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
        if u(0) != VERSION as usize {
            return Err(bad(format!(
                "version {} (this build reads {VERSION})",
                u(0)
            )));
        }
        let header = Header {
            n_ctx: u(1),
            n_vocab: u(2),
            n_chunk: u(3),
            f16: u(4) == 1,
            scored: u(5),
        };
        if u(4) > 1 || header.n_ctx < 4 || header.scored != header.n_ctx - 1 - header.n_ctx / 2 {
            return Err(bad("inconsistent header".into()));
        }
        let width = if header.f16 { 2 } else { 4 };
        let n_tok = header.n_chunk as u64 * header.n_ctx as u64;
        let expected = 40
            + 4 * n_tok
            + header.n_chunk as u64 * header.scored as u64 * header.n_vocab as u64 * width;
        if len != expected {
            return Err(bad(format!("{len} bytes, its header implies {expected}")));
        }
        let mut raw = vec![0u8; 4 * n_tok as usize];
        input
            .read_exact(&mut raw)
            .map_err(|e| EvalError::io(path, "reading", e))?;
        let tokens = raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        Ok(LogitsReader {
            path: path.to_owned(),
            input,
            header,
            tokens,
            buf: Vec::new(),
        })
    }

    /// Reads the next `n` positions' log-probabilities into `out` (n × n_vocab).
    pub fn read(&mut self, n: usize, out: &mut Vec<f32>) -> Result<(), EvalError> {
        let count = n * self.header.n_vocab;
        let width = if self.header.f16 { 2 } else { 4 };
        self.buf.resize(count * width, 0);
        let path = &self.path;
        self.input
            .read_exact(&mut self.buf)
            .map_err(|e| EvalError::io(path, "reading", e))?;
        out.clear();
        if self.header.f16 {
            out.extend(
                self.buf
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
            );
        } else {
            out.extend(
                self.buf
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_refused() {
        let dir = std::env::temp_dir().join(format!("lowbit-lp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("base.lp");
        let h = Header {
            n_ctx: 8,
            n_vocab: 3,
            n_chunk: 1,
            f16: true,
            scored: 3,
        };
        let tokens: Vec<u32> = (0..8).collect();
        let mut w = LogitsWriter::create(&p, &h, &tokens).unwrap();
        for i in 0..3 {
            w.push(&[-0.5, -1.0 - i as f32, -20.0]).unwrap();
        }
        w.finish().unwrap();
        let mut r = LogitsReader::open(&p).unwrap();
        assert_eq!(r.header, h);
        assert_eq!(r.tokens, tokens);
        let mut out = Vec::new();
        r.read(3, &mut out).unwrap();
        assert_eq!(
            out,
            vec![-0.5, -1.0, -20.0, -0.5, -2.0, -20.0, -0.5, -3.0, -20.0]
        );
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 2]).unwrap();
        assert!(matches!(
            LogitsReader::open(&p),
            Err(EvalError::BadLogitsFile { .. })
        ));
        std::fs::write(&p, b"_logits_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").unwrap();
        assert!(matches!(
            LogitsReader::open(&p),
            Err(EvalError::BadLogitsFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
