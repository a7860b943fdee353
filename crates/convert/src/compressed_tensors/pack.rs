//! compressed-tensors' dense int32 packing: within each packed row, element `i` (already offset to
//! the unsigned range `0..2^b`) occupies bits `i·b .. i·b + b` of the row's bit stream, the stream
//! laid out as little-endian 32-bit words, an element may straddle two words, and a row takes
//! `ceil(n·b / 32)` words. Rows are packed independently; "packed along dim 0" (the zero points)
//! packs the columns of a matrix instead.

/// Words a row of `n` `bits`-bit values takes.
pub fn packed_words(n: usize, bits: u8) -> usize {
    (n * bits as usize).div_ceil(32)
}

/// Packs one row of unsigned codes (each `< 2^bits`).
pub fn pack_row(codes: &[u8], bits: u8, out: &mut Vec<u32>) {
    let start = out.len();
    out.resize(start + packed_words(codes.len(), bits), 0);
    let words = &mut out[start..];
    let mask = (1u64 << bits) - 1;
    for (i, &c) in codes.iter().enumerate() {
        let bit = i * bits as usize;
        let (w, off) = (bit / 32, bit % 32);
        let v = (c as u64 & mask) << off;
        words[w] |= v as u32;
        if off + bits as usize > 32 {
            words[w + 1] |= (v >> 32) as u32;
        }
    }
}

/// Unpacks `n` codes from one packed row.
pub fn unpack_row(words: &[u32], bits: u8, n: usize, out: &mut Vec<u8>) {
    let mask = (1u64 << bits) - 1;
    for i in 0..n {
        let bit = i * bits as usize;
        let (w, off) = (bit / 32, bit % 32);
        let mut v = words[w] as u64 >> off;
        if off + bits as usize > 32 {
            v |= (words[w + 1] as u64) << (32 - off);
        }
        out.push((v & mask) as u8);
    }
}

/// Packs a `rows × cols` matrix of codes along dimension 0: the result is
/// `packed_words(rows) × cols`, column `c` holding column `c` of the input packed.
pub fn pack_columns(codes: &[u8], rows: usize, cols: usize, bits: u8) -> Vec<u32> {
    let pw = packed_words(rows, bits);
    let mut out = vec![0u32; pw * cols];
    let mut col = Vec::with_capacity(rows);
    let mut packed = Vec::with_capacity(pw);
    for c in 0..cols {
        col.clear();
        col.extend((0..rows).map(|r| codes[r * cols + c]));
        packed.clear();
        pack_row(&col, bits, &mut packed);
        for (w, &v) in packed.iter().enumerate() {
            out[w * cols + c] = v;
        }
    }
    out
}

/// The inverse of [`pack_columns`]: `words` is `packed_words(rows) × cols`.
pub fn unpack_columns(words: &[u32], rows: usize, cols: usize, bits: u8) -> Vec<u8> {
    let pw = packed_words(rows, bits);
    let mut out = vec![0u8; rows * cols];
    let mut col_words = Vec::with_capacity(pw);
    let mut col = Vec::with_capacity(rows);
    for c in 0..cols {
        col_words.clear();
        col_words.extend((0..pw).map(|w| words[w * cols + c]));
        col.clear();
        unpack_row(&col_words, bits, rows, &mut col);
        for (r, &v) in col.iter().enumerate() {
            out[r * cols + c] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bit_codes_fill_nibbles_from_the_low_end() {
        let mut w = Vec::new();
        pack_row(&[1, 2, 3, 4, 5, 6, 7, 15], 4, &mut w);
        assert_eq!(w, vec![0xF765_4321]);
    }

    #[test]
    fn every_width_round_trips_including_straddling_words() {
        for bits in 2..=8u8 {
            for n in [1usize, 7, 32, 33, 100] {
                let codes: Vec<u8> = (0..n).map(|i| ((i * 37 + 11) % (1 << bits)) as u8).collect();
                let mut w = Vec::new();
                pack_row(&codes, bits, &mut w);
                assert_eq!(w.len(), packed_words(n, bits));
                let mut back = Vec::new();
                unpack_row(&w, bits, n, &mut back);
                assert_eq!(back, codes, "{bits} bits, {n} values");
            }
        }
    }

    #[test]
    fn three_bit_values_cross_a_word_boundary() {
        // Element 10 occupies bits 30..33: its low two bits end word 0, its high bit starts word 1.
        let mut codes = vec![0u8; 11];
        codes[10] = 0b101;
        let mut w = Vec::new();
        pack_row(&codes, 3, &mut w);
        assert_eq!(w, vec![0b01 << 30, 0b1]);
    }

    #[test]
    fn columns_pack_along_the_first_dimension() {
        let (rows, cols) = (9, 3);
        let codes: Vec<u8> = (0..rows * cols).map(|i| (i % 16) as u8).collect();
        let w = pack_columns(&codes, rows, cols, 4);
        assert_eq!(w.len(), 2 * cols);
        let mut first = Vec::new();
        pack_row(&(0..rows).map(|r| codes[r * cols]).collect::<Vec<_>>(), 4, &mut first);
        assert_eq!((w[0], w[cols]), (first[0], first[1]));
        assert_eq!(unpack_columns(&w, rows, cols, 4), codes);
    }
}
