//! Byte-level BPE (GPT-2 style): each word's bytes start as single-character symbols and the
//! adjacent pair with the lowest merge rank is merged, leftmost first, until no pair has a
//! merge.
//!
//! Symbols are kept as ids into an interner holding every vocabulary text plus any merge
//! operand or result that is not itself a token, so that a merge lookup is one hash of two
//! integers instead of building and hashing strings.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::bytes::byte_to_char;
use super::hash::FxMap;
use super::vocab::Vocab;

/// Marks a byte whose character is neither a token nor a merge operand.
const NONE: u32 = u32::MAX;

pub struct Bpe {
    /// (left, right) symbol ids → (rank, merged symbol id).
    merges: FxMap<u64, (u32, u32)>,
    /// Initial symbol id of each byte.
    byte_sym: [u32; 256],
    n_vocab: u32,
    /// Look a whole word up before merging (LLaMA-3 family).
    ignore_merges: bool,
}

/// Reusable buffers for [`Bpe::encode_word`].
#[derive(Default)]
pub struct BpeScratch {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, u32, u32)>>,
    encoded: String,
}

#[derive(Clone, Copy)]
struct Sym {
    id: u32,
    /// Length in bytes of the original word; 0 once merged into its left neighbour.
    len: u32,
    prev: u32,
    next: u32,
}

const END: u32 = u32::MAX;

#[inline]
fn key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

impl Bpe {
    /// `merges` are `"left right"` strings in rank order.
    pub fn new<'a>(
        vocab: &Vocab,
        merges: impl IntoIterator<Item = &'a str>,
        ignore_merges: bool,
    ) -> Bpe {
        let n_vocab = vocab.len() as u32;
        let mut extra: Vec<String> = Vec::new();
        let mut extra_ids: FxMap<String, u32> = FxMap::default();
        let mut intern = |s: &str| -> u32 {
            if let Some(id) = vocab.id(s) {
                return id;
            }
            if let Some(&id) = extra_ids.get(s) {
                return id;
            }
            let id = n_vocab + extra.len() as u32;
            extra.push(s.to_owned());
            extra_ids.insert(s.to_owned(), id);
            id
        };
        let mut table = FxMap::default();
        let mut merged = String::new();
        for (rank, m) in merges.into_iter().enumerate() {
            // llama.cpp splits at the first space after the first byte, so "  x" is (" ", "x").
            let Some(pos) = m.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1) else {
                continue;
            };
            let (l, r) = (&m[..pos], &m[pos + 1..]);
            let (li, ri) = (intern(l), intern(r));
            merged.clear();
            merged.push_str(l);
            merged.push_str(r);
            let mi = intern(&merged);
            // The first (lowest-rank) occurrence of a pair wins.
            table.entry(key(li, ri)).or_insert((rank as u32, mi));
        }
        let mut byte_sym = [NONE; 256];
        let mut buf = [0u8; 4];
        for (b, slot) in byte_sym.iter_mut().enumerate() {
            let s = byte_to_char(b as u8).encode_utf8(&mut buf);
            *slot = vocab
                .id(s)
                .or_else(|| extra_ids.get(&*s).copied())
                .unwrap_or(NONE);
        }
        Bpe {
            merges: table,
            byte_sym,
            n_vocab,
            ignore_merges,
        }
    }

    /// Appends the ids of one pre-tokenized word.
    pub fn encode_word(&self, vocab: &Vocab, word: &[u8], s: &mut BpeScratch, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if self.ignore_merges {
            s.encoded.clear();
            s.encoded.extend(word.iter().map(|&b| byte_to_char(b)));
            if let Some(id) = vocab.id(&s.encoded) {
                out.push(id);
                return;
            }
        }
        s.syms.clear();
        s.heap.clear();
        let n = word.len() as u32;
        for (i, &b) in word.iter().enumerate() {
            let i = i as u32;
            s.syms.push(Sym {
                id: self.byte_sym[b as usize],
                len: 1,
                prev: if i == 0 { END } else { i - 1 },
                next: if i + 1 == n { END } else { i + 1 },
            });
        }
        for i in 1..n {
            self.push_pair(s, i - 1, i);
        }
        while let Some(Reverse((_, left, merged))) = s.heap.pop() {
            let l = s.syms[left as usize];
            if l.len == 0 || l.next == END {
                continue;
            }
            let r = s.syms[l.next as usize];
            // Stale: either side changed since the pair was queued.
            if r.len == 0 || self.merged(l.id, r.id) != Some(merged) {
                continue;
            }
            let right = l.next;
            s.syms[left as usize].id = merged;
            s.syms[left as usize].len += r.len;
            s.syms[left as usize].next = r.next;
            s.syms[right as usize].len = 0;
            if r.next != END {
                s.syms[r.next as usize].prev = left;
            }
            if l.prev != END {
                self.push_pair(s, l.prev, left);
            }
            if r.next != END {
                self.push_pair(s, left, r.next);
            }
        }
        let mut i = 0u32;
        let mut pos = 0usize;
        while i != END {
            let sym = s.syms[i as usize];
            let bytes = &word[pos..pos + sym.len as usize];
            if sym.id < self.n_vocab {
                out.push(sym.id);
            } else {
                self.fallback(vocab, bytes, out);
            }
            pos += sym.len as usize;
            i = sym.next;
        }
    }

    #[inline]
    fn merged(&self, l: u32, r: u32) -> Option<u32> {
        if l == NONE || r == NONE {
            return None;
        }
        self.merges.get(&key(l, r)).map(|&(_, m)| m)
    }

    #[inline]
    fn push_pair(&self, s: &mut BpeScratch, left: u32, right: u32) {
        let (l, r) = (s.syms[left as usize].id, s.syms[right as usize].id);
        if l == NONE || r == NONE {
            return;
        }
        if let Some(&(rank, merged)) = self.merges.get(&key(l, r)) {
            s.heap.push(Reverse((rank, left, merged)));
        }
    }

    /// A final symbol that is not a token: llama.cpp then looks each byte of its text up as a
    /// one-byte token, which only succeeds for characters that are ASCII; others are dropped.
    fn fallback(&self, vocab: &Vocab, bytes: &[u8], out: &mut Vec<u32>) {
        let mut buf = [0u8; 4];
        for &b in bytes {
            let c = byte_to_char(b);
            if c.is_ascii() {
                if let Some(id) = vocab.id(c.encode_utf8(&mut buf)) {
                    out.push(id);
                }
            }
        }
    }
}
