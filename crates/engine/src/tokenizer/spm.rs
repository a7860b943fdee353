//! SentencePiece-style tokenizing as llama.cpp does it for `tokenizer.ggml.model = llama`
//! (LLaMA-1/2, Gemma): spaces become "▁", the text starts as one symbol per character, and the
//! adjacent pair whose concatenation is the highest-scoring token is merged (leftmost on ties)
//! until no pair forms a token. Characters that end up as no token are emitted as their UTF-8
//! bytes through the `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// Reusable buffers for [`encode`].
#[derive(Default)]
pub struct SpmScratch {
    text: String,
    syms: Vec<Sym>,
    heap: BinaryHeap<Pair>,
}

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    /// Bytes; 0 once merged into the left neighbour.
    len: u32,
    prev: u32,
    next: u32,
}

const END: u32 = u32::MAX;

struct Pair {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl Ord for Pair {
    fn cmp(&self, o: &Self) -> Ordering {
        // Highest score first, then the leftmost; -0.0 and 0.0 tie, as with C++ `<`.
        self.score
            .partial_cmp(&o.score)
            .unwrap_or(Ordering::Equal)
            .then(o.left.cmp(&self.left))
    }
}
impl PartialOrd for Pair {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Pair {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Pair {}

/// Appends the ids of `text` (one fragment; the caller adds any space prefix).
pub fn encode(vocab: &Vocab, text: &str, s: &mut SpmScratch, out: &mut Vec<u32>) {
    s.text.clear();
    for c in text.chars() {
        if c == ' ' {
            s.text.push('▁');
        } else {
            s.text.push(c);
        }
    }
    let t = s.text.as_str();
    s.syms.clear();
    s.heap.clear();
    let n = t.chars().count() as u32;
    for (i, (start, c)) in t.char_indices().enumerate() {
        let i = i as u32;
        s.syms.push(Sym {
            start: start as u32,
            len: c.len_utf8() as u32,
            prev: if i == 0 { END } else { i - 1 },
            next: if i + 1 == n { END } else { i + 1 },
        });
    }
    for i in 1..n {
        push_pair(vocab, t, &s.syms, &mut s.heap, i - 1, i);
    }
    while let Some(p) = s.heap.pop() {
        let (l, r) = (s.syms[p.left as usize], s.syms[p.right as usize]);
        if l.len == 0 || r.len == 0 || l.len + r.len != p.size {
            continue;
        }
        s.syms[p.left as usize].len += r.len;
        s.syms[p.left as usize].next = r.next;
        s.syms[p.right as usize].len = 0;
        if r.next != END {
            s.syms[r.next as usize].prev = p.left;
        }
        if l.prev != END {
            push_pair(vocab, t, &s.syms, &mut s.heap, l.prev, p.left);
        }
        if r.next != END {
            push_pair(vocab, t, &s.syms, &mut s.heap, p.left, r.next);
        }
    }
    let mut i = if n == 0 { END } else { 0 };
    while i != END {
        let sym = s.syms[i as usize];
        let piece = &t[sym.start as usize..(sym.start + sym.len) as usize];
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    if let Some(id) = byte_token(vocab, b) {
                        out.push(id);
                    }
                }
            }
        }
        i = sym.next;
    }
}

fn push_pair(vocab: &Vocab, t: &str, syms: &[Sym], heap: &mut BinaryHeap<Pair>, l: u32, r: u32) {
    let (a, b) = (syms[l as usize], syms[r as usize]);
    let size = a.len + b.len;
    let text = &t[a.start as usize..(a.start + size) as usize];
    if let Some(id) = vocab.id(text) {
        heap.push(Pair {
            score: vocab.scores[id as usize],
            left: l,
            right: r,
            size,
        });
    }
}

/// The `<0xXX>` token of a byte, else a token spelling the byte itself, else `<unk>`.
pub fn byte_token(vocab: &Vocab, b: u8) -> Option<u32> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let name = [
        b'<',
        b'0',
        b'x',
        HEX[(b >> 4) as usize],
        HEX[(b & 15) as usize],
        b'>',
    ];
    let name = std::str::from_utf8(&name).ok()?;
    vocab
        .id(name)
        .or_else(|| {
            let one = [b];
            std::str::from_utf8(&one).ok().and_then(|s| vocab.id(s))
        })
        .or(vocab.unk)
}
