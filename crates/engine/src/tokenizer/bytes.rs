//! GPT-2's byte-level alphabet: every byte is shown as a printable character so that BPE
//! vocabularies can be stored as text. Printable Latin-1 bytes stand for themselves; the other
//! 68 bytes are moved, in order, to U+0100 onwards.

/// The character that stands for byte `b`.
pub fn byte_to_char(b: u8) -> char {
    BYTE_TO_CHAR[b as usize]
}

/// The byte a character stands for, if it is one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    let c = c as u32;
    if c < 0x100 {
        let b = c as u8;
        return is_printable(b).then_some(b);
    }
    let k = (c - 0x100) as usize;
    NON_PRINTABLE.get(k).copied()
}

const fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// Bytes that are not printable, in increasing order: the k-th one maps to U+0100 + k.
const NON_PRINTABLE: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut b = 0usize;
    let mut k = 0usize;
    while b < 256 {
        if !is_printable(b as u8) {
            out[k] = b as u8;
            k += 1;
        }
        b += 1;
    }
    out
};

const BYTE_TO_CHAR: [char; 256] = {
    let mut out = ['\0'; 256];
    let mut b = 0usize;
    let mut k = 0u32;
    while b < 256 {
        out[b] = if is_printable(b as u8) {
            b as u8 as char
        } else {
            let c = 0x100 + k;
            k += 1;
            match char::from_u32(c) {
                Some(c) => c,
                None => '\0',
            }
        };
        b += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points_and_round_trip() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0xAD), '\u{143}');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
        assert_eq!(char_to_byte('\u{20}'), None);
    }
}
