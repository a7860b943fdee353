//! n-bit code packing, shared by the affine formats and (later) GPTQ/AWQ exporters.
//!
//! Layout: a continuous little-endian bitstream, LSB first. Code `i` occupies bits
//! `[i·b, (i+1)·b)` of the stream, where bit `k` of the stream is bit `k % 8` of byte `k / 8`
//! (or bit `k % 32` of u32 word `k / 32`). Codes straddle byte/word boundaries when `b` does not
//! divide 8/32 (3, 5, 6, 7 bits); there is no padding between rows, only at the very end.
//!
//! For 2, 4 and 8 bits the u32 form is exactly AutoGPTQ's `qweight` packing (16, 8 or 4 values per
//! int32, first value in the lowest bits), and for 3 bits it matches AutoGPTQ's 32-values-in-3-words
//! scheme, which is the same continuous bitstream.

use crate::FormatError;

/// Bytes needed for `n` codes of `bits` bits.
pub fn packed_len(n: usize, bits: u8) -> usize {
    (n * bits as usize).div_ceil(8)
}

/// u32 words needed for `n` codes of `bits` bits (the last word zero-padded).
pub fn packed_words(n: usize, bits: u8) -> usize {
    (n * bits as usize).div_ceil(32)
}

fn check_bits(bits: u8) -> Result<(), FormatError> {
    if (1..=8).contains(&bits) {
        Ok(())
    } else {
        Err(FormatError::InvalidParameter(format!(
            "packing: {bits} bits per code (1..=8 supported)"
        )))
    }
}

fn check_codes(codes: &[u8], bits: u8) -> Result<(), FormatError> {
    let max = codes.iter().copied().max().unwrap_or(0);
    if (max as u32) >> bits != 0 {
        return Err(FormatError::InvalidParameter(format!(
            "packing: code {max} does not fit in {bits} bits"
        )));
    }
    Ok(())
}

/// Packs `codes` (each < 2^bits) into `out`, which must be exactly `packed_len(codes.len(), bits)`.
pub fn pack_codes(codes: &[u8], bits: u8, out: &mut [u8]) -> Result<(), FormatError> {
    check_bits(bits)?;
    check_codes(codes, bits)?;
    if out.len() != packed_len(codes.len(), bits) {
        return Err(FormatError::InvalidParameter(format!(
            "packing: {} output bytes for {} codes of {bits} bits (need {})",
            out.len(),
            codes.len(),
            packed_len(codes.len(), bits)
        )));
    }
    match bits {
        8 => out.copy_from_slice(codes),
        4 => {
            for (o, pair) in out.iter_mut().zip(codes.chunks(2)) {
                *o = pair[0] | pair.get(1).map_or(0, |&h| h << 4);
            }
        }
        _ => {
            let (mut acc, mut have, mut o) = (0u32, 0u32, 0usize);
            for &c in codes {
                acc |= (c as u32) << have;
                have += bits as u32;
                while have >= 8 {
                    out[o] = acc as u8;
                    acc >>= 8;
                    have -= 8;
                    o += 1;
                }
            }
            if have > 0 {
                out[o] = acc as u8;
            }
        }
    }
    Ok(())
}

/// Unpacks `out.len()` codes from `packed`, which must be exactly `packed_len(out.len(), bits)`.
pub fn unpack_codes(packed: &[u8], bits: u8, out: &mut [u8]) -> Result<(), FormatError> {
    check_bits(bits)?;
    if packed.len() != packed_len(out.len(), bits) {
        return Err(FormatError::InvalidParameter(format!(
            "unpacking: {} bytes cannot hold exactly {} codes of {bits} bits",
            packed.len(),
            out.len()
        )));
    }
    match bits {
        8 => out.copy_from_slice(packed),
        4 => {
            for (pair, &b) in out.chunks_mut(2).zip(packed) {
                pair[0] = b & 15;
                if let Some(h) = pair.get_mut(1) {
                    *h = b >> 4;
                }
            }
        }
        _ => {
            let mask = (1u32 << bits) - 1;
            let (mut acc, mut have, mut bytes) = (0u32, 0u32, packed.iter());
            for c in out.iter_mut() {
                while have < bits as u32 {
                    acc |= (*bytes.next().unwrap_or(&0) as u32) << have;
                    have += 8;
                }
                *c = (acc & mask) as u8;
                acc >>= bits;
                have -= bits as u32;
            }
        }
    }
    Ok(())
}

/// Packs codes into u32 words (the bitstream above, little-endian words).
pub fn pack_words(codes: &[u8], bits: u8) -> Result<Vec<u32>, FormatError> {
    check_bits(bits)?;
    let mut bytes = vec![0u8; packed_words(codes.len(), bits) * 4];
    let used = packed_len(codes.len(), bits);
    pack_codes(codes, bits, &mut bytes[..used])?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Unpacks `out.len()` codes from u32 words produced by [`pack_words`].
pub fn unpack_words(words: &[u32], bits: u8, out: &mut [u8]) -> Result<(), FormatError> {
    check_bits(bits)?;
    if words.len() != packed_words(out.len(), bits) {
        return Err(FormatError::InvalidParameter(format!(
            "unpacking: {} words cannot hold exactly {} codes of {bits} bits",
            words.len(),
            out.len()
        )));
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    unpack_codes(&bytes[..packed_len(out.len(), bits)], bits, out)
}

/// AutoGPTQ's 2-D `qweight`: for a weight of `out_features × in_features` codes (row-major, a
/// row per output channel, as lowbit stores it), returns `[in_features·bits/32][out_features]`
/// words: column `o` holds output channel `o`'s codes packed along the input dimension. Requires
/// `in_features · bits` to be a multiple of 32 so no word straddles two channels' data.
/// (AutoGPTQ's `qzeros` is [`pack_words`] applied to each group's row of zero points, minus one
/// in its "v1" checkpoint format; `scales` is `[groups][out_features]`, the transpose of
/// [`super::AffineQuantized::scales`].)
pub fn pack_gptq_qweight(
    codes: &[u8],
    out_features: usize,
    in_features: usize,
    bits: u8,
) -> Result<Vec<u32>, FormatError> {
    let wpc = gptq_words_per_channel(codes.len(), out_features, in_features, bits)?;
    let mut q = vec![0u32; wpc * out_features];
    for (o, row) in codes
        .chunks_exact(in_features.max(1))
        .enumerate()
        .take(out_features)
    {
        for (w, word) in pack_words(row, bits)?.into_iter().enumerate() {
            q[w * out_features + o] = word;
        }
    }
    Ok(q)
}

/// Inverse of [`pack_gptq_qweight`]: `out_features × in_features` codes, row-major.
pub fn unpack_gptq_qweight(
    qweight: &[u32],
    out_features: usize,
    in_features: usize,
    bits: u8,
) -> Result<Vec<u8>, FormatError> {
    let wpc = gptq_words_per_channel(out_features * in_features, out_features, in_features, bits)?;
    if qweight.len() != wpc * out_features {
        return Err(FormatError::InvalidParameter(format!(
            "gptq: {} words for {out_features}x{in_features} codes of {bits} bits",
            qweight.len()
        )));
    }
    let mut codes = vec![0u8; out_features * in_features];
    let mut col = vec![0u32; wpc];
    for (o, row) in codes
        .chunks_exact_mut(in_features.max(1))
        .enumerate()
        .take(out_features)
    {
        for (w, word) in col.iter_mut().enumerate() {
            *word = qweight[w * out_features + o];
        }
        unpack_words(&col, bits, row)?;
    }
    Ok(codes)
}

fn gptq_words_per_channel(
    n: usize,
    out_features: usize,
    in_features: usize,
    bits: u8,
) -> Result<usize, FormatError> {
    check_bits(bits)?;
    if out_features.checked_mul(in_features) != Some(n) || (in_features * bits as usize) % 32 != 0 {
        return Err(FormatError::InvalidParameter(format!(
            "gptq: {n} codes as {out_features}x{in_features} of {bits} bits (in_features·bits must be a multiple of 32)"
        )));
    }
    Ok(in_features * bits as usize / 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(n: usize, bits: u8, seed: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| ((i.wrapping_mul(2654435761) ^ seed) >> 7) as u8 & ((1u16 << bits) - 1) as u8)
            .collect()
    }

    #[test]
    fn round_trip_every_width_and_length() {
        for bits in 1..=8u8 {
            for n in 0..40 {
                let c = codes(n, bits, bits as u32);
                let mut p = vec![0u8; packed_len(n, bits)];
                pack_codes(&c, bits, &mut p).unwrap();
                let mut back = vec![0u8; n];
                unpack_codes(&p, bits, &mut back).unwrap();
                assert_eq!(c, back, "bits {bits} n {n}");
                let w = pack_words(&c, bits).unwrap();
                assert_eq!(w.len(), packed_words(n, bits));
                unpack_words(&w, bits, &mut back).unwrap();
                assert_eq!(c, back);
            }
        }
    }

    #[test]
    fn bit_order_is_lsb_first_and_continuous() {
        let mut p = [0u8; 3];
        pack_codes(&[1, 2, 3, 4, 5, 6, 7, 0], 3, &mut p).unwrap();
        // 001 010 011 100 101 110 111 000, first code in the lowest bits
        let stream: u32 = [1u32, 2, 3, 4, 5, 6, 7, 0]
            .iter()
            .enumerate()
            .map(|(i, &c)| c << (3 * i))
            .sum();
        assert_eq!(p, [stream as u8, (stream >> 8) as u8, (stream >> 16) as u8]);
        let w = pack_words(&[1, 2, 3, 4, 5, 6, 7, 8], 4).unwrap();
        assert_eq!(w, vec![0x8765_4321]);
    }

    #[test]
    fn gptq_qweight_layout() {
        // 2 output channels × 8 inputs at 4 bits: one word per channel.
        let c: Vec<u8> = (0..16).map(|i| i as u8).collect();
        let q = pack_gptq_qweight(&c, 2, 8, 4).unwrap();
        assert_eq!(q, vec![0x7654_3210, 0xfedc_ba98]);
        // 3 channels × 64 inputs at 3 bits: 6 words per channel, transposed.
        let c = codes(3 * 64, 3, 5);
        let q = pack_gptq_qweight(&c, 3, 64, 3).unwrap();
        assert_eq!(q.len(), 6 * 3);
        assert_eq!(q[1], pack_words(&c[64..128], 3).unwrap()[0]);
        assert_eq!(unpack_gptq_qweight(&q, 3, 64, 3).unwrap(), c);
        assert!(pack_gptq_qweight(&c[..60], 3, 20, 4).is_err());
        assert!(pack_gptq_qweight(&c, 2, 64, 3).is_err());
    }

    #[test]
    fn errors_instead_of_panics() {
        let mut p = [0u8; 1];
        assert!(pack_codes(&[4], 2, &mut p).is_err());
        assert!(pack_codes(&[1, 1, 1, 1, 1], 2, &mut p).is_err());
        assert!(pack_codes(&[1], 0, &mut p).is_err());
        assert!(pack_codes(&[1], 9, &mut p).is_err());
        assert!(unpack_codes(&p, 3, &mut [0u8; 5]).is_err());
        assert!(unpack_words(&[0], 3, &mut [0u8; 11]).is_err());
    }
}
