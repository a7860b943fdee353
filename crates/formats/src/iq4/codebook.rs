//! IQ4's 16 non-linear levels (ggml's `kvalues_iq4nl`, part of the format).

use crate::search::Codebook16;

pub const KVALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

pub fn grid() -> Codebook16 {
    Codebook16::new(&KVALUES)
}
