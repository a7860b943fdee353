//! Bounds-checked little-endian reads over a byte slice.
//!
//! Every length or count read from the file is compared with the bytes that remain before it is
//! used to slice or allocate, so no header field can make the reader over-allocate or panic.

use std::path::Path;

use crate::error::{FileError, Result};

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], path: &'a Path) -> Cursor<'a> {
        Cursor { buf, pos: 0, path }
    }

    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    pub fn left(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    pub fn path(&self) -> &'a Path {
        self.path
    }

    pub fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(FileError::Truncated {
                path: self.path.to_owned(),
                offset: self.pos(),
                need: n,
                left: self.left(),
                what: what(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a u64 element count and checks that `count * min_size` bytes can still follow.
    pub fn count(&mut self, min_size: u64, what: impl Fn() -> String) -> Result<usize> {
        let offset = self.pos();
        let count = self.u64(&what)?;
        let fits = count
            .checked_mul(min_size)
            .is_some_and(|b| b <= self.left());
        if !fits || usize::try_from(count).is_err() {
            return Err(FileError::CountTooLarge {
                path: self.path.to_owned(),
                offset,
                what: what(),
                count,
                left: self.left(),
            });
        }
        Ok(count as usize)
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (no terminator).
    pub fn str(&mut self, what: impl Fn() -> String) -> Result<&'a str> {
        let offset = self.pos();
        let len = self.count(1, || format!("length of {}", what()))?;
        let bytes = self.take(len as u64, &what)?;
        std::str::from_utf8(bytes).map_err(|e| {
            FileError::invalid(
                self.path,
                format!("{} at offset {offset} is not valid UTF-8: {e}", what()),
            )
        })
    }
}
