//! A minimal SentencePiece `tokenizer.model` (protobuf `ModelProto`) reader and writer.
//!
//! Only what a GGUF vocabulary needs: the pieces with score and type, plus on write the few
//! trainer/normalizer fields the sentencepiece library requires to load a BPE model. Field
//! numbers are those of sentencepiece_model.proto.

use crate::error::{ConvertError, Result};

/// One vocabulary entry. `kind` uses SentencePiece's numbering, which equals llama.cpp's token
/// types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
#[derive(Clone, Debug, PartialEq)]
pub struct SpmPiece {
    pub piece: String,
    pub score: f32,
    pub kind: i32,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(ConvertError::SentencePiece("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ConvertError::SentencePiece("varint longer than 10 bytes"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(ConvertError::SentencePiece("field runs past the end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Next `(field, wire_type)`.
    fn key(&mut self) -> Result<(u64, u8)> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let n = self.varint()?;
        self.bytes(usize::try_from(n).map_err(|_| ConvertError::SentencePiece("length overflow"))?)
    }

    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.bytes(8).map(drop),
            2 => self.len_delimited().map(drop),
            5 => self.bytes(4).map(drop),
            _ => Err(ConvertError::SentencePiece("unsupported wire type")),
        }
    }
}

fn parse_piece(buf: &[u8]) -> Result<SpmPiece> {
    let mut r = Reader { buf, pos: 0 };
    let mut p = SpmPiece {
        piece: String::new(),
        score: 0.0,
        kind: 1,
    };
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                p.piece = std::str::from_utf8(r.len_delimited()?)
                    .map_err(|_| ConvertError::SentencePiece("piece is not UTF-8"))?
                    .to_string();
            }
            (2, 5) => {
                let b = r.bytes(4)?;
                p.score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            (3, 0) => p.kind = r.varint()? as i32,
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(p)
}

/// The pieces of a serialized `ModelProto`, in id order.
pub fn read_spm_model(buf: &[u8]) -> Result<Vec<SpmPiece>> {
    let mut r = Reader { buf, pos: 0 };
    let mut pieces = Vec::new();
    while !r.done() {
        match r.key()? {
            (1, 2) => pieces.push(parse_piece(r.len_delimited()?)?),
            (_, wire) => r.skip(wire)?,
        }
    }
    if pieces.is_empty() {
        return Err(ConvertError::SentencePiece("no pieces"));
    }
    Ok(pieces)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u8) {
    put_varint(out, (field << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// int32 fields are varints of the sign-extended 64-bit value.
fn put_i32(out: &mut Vec<u8>, field: u64, v: i32) {
    put_key(out, field, 0);
    put_varint(out, v as i64 as u64);
}

/// Special ids for the trainer spec (−1 = none). sentencepiece's `bos_id()` etc. look the
/// pieces up by the spec's piece strings, so those are written too.
#[derive(Clone, Copy, Debug)]
pub struct SpmIds {
    pub unk: i32,
    pub bos: i32,
    pub eos: i32,
    pub pad: i32,
}

/// Serializes a BPE `ModelProto` that the sentencepiece library loads.
pub fn write_spm_model(
    pieces: &[SpmPiece],
    ids: SpmIds,
    add_dummy_prefix: bool,
    byte_fallback: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(pieces.len() * 24);
    let mut msg = Vec::with_capacity(64);
    for p in pieces {
        msg.clear();
        put_bytes(&mut msg, 1, p.piece.as_bytes());
        put_key(&mut msg, 2, 5);
        msg.extend_from_slice(&p.score.to_le_bytes());
        put_i32(&mut msg, 3, p.kind);
        put_bytes(&mut out, 1, &msg);
    }
    let mut trainer = Vec::new();
    put_i32(&mut trainer, 3, 2); // model_type = BPE
    put_i32(&mut trainer, 4, pieces.len() as i32);
    put_i32(&mut trainer, 35, i32::from(byte_fallback));
    put_i32(&mut trainer, 40, ids.unk);
    put_i32(&mut trainer, 41, ids.bos);
    put_i32(&mut trainer, 42, ids.eos);
    put_i32(&mut trainer, 43, ids.pad);
    for (field, id) in [(45, ids.unk), (46, ids.bos), (47, ids.eos), (48, ids.pad)] {
        if let Some(p) = usize::try_from(id).ok().and_then(|i| pieces.get(i)) {
            put_bytes(&mut trainer, field, p.piece.as_bytes());
        }
    }
    put_bytes(&mut out, 2, &trainer);
    let mut norm = Vec::new();
    put_bytes(&mut norm, 1, b"identity");
    put_i32(&mut norm, 3, i32::from(add_dummy_prefix));
    put_i32(&mut norm, 4, 0); // remove_extra_whitespaces
    put_i32(&mut norm, 5, 1); // escape_whitespaces
    put_bytes(&mut out, 3, &norm);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pieces = vec![
            SpmPiece {
                piece: "<unk>".into(),
                score: 0.0,
                kind: 2,
            },
            SpmPiece {
                piece: "▁the".into(),
                score: -12.5,
                kind: 1,
            },
            SpmPiece {
                piece: "<0x0A>".into(),
                score: 0.0,
                kind: 6,
            },
            SpmPiece {
                piece: "  ".into(),
                score: -1000.0,
                kind: 4,
            },
        ];
        let ids = SpmIds {
            unk: 0,
            bos: -1,
            eos: -1,
            pad: -1,
        };
        let bytes = write_spm_model(&pieces, ids, false, true);
        assert_eq!(read_spm_model(&bytes).unwrap(), pieces);
        assert!(read_spm_model(&bytes[..bytes.len() / 2]).is_err());
        assert!(read_spm_model(&[]).is_err());
    }
}
