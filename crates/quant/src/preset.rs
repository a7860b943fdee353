//! Named quantization targets: a single block type, or one of llama.cpp's `_S/_M/_L` mixes.
//!
//! A preset only names an intent; [`crate::plan`] turns it into one type per tensor.

use lowbit_formats::GgmlType;
use std::fmt;

/// What `--type` asks for.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Every quantizable weight in one type (output/embedding rules still apply unless `--pure`).
    Uniform(GgmlType),
    Q2_K,
    Q2_K_S,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
}

const MIXES: &[(Preset, &str)] = &[
    (Preset::Q2_K, "Q2_K"),
    (Preset::Q2_K_S, "Q2_K_S"),
    (Preset::Q3_K_S, "Q3_K_S"),
    (Preset::Q3_K_M, "Q3_K_M"),
    (Preset::Q3_K_L, "Q3_K_L"),
    (Preset::Q4_K_S, "Q4_K_S"),
    (Preset::Q4_K_M, "Q4_K_M"),
    (Preset::Q5_K_S, "Q5_K_S"),
    (Preset::Q5_K_M, "Q5_K_M"),
];

/// Block types that make sense as the main weight type of a whole model.
const UNIFORM: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
];

impl Preset {
    /// Parses a `--type` value. `Q3_K`, `Q4_K` and `Q5_K` mean their `_M` mixes, as in
    /// llama-quantize; any other block type is a uniform target.
    pub fn parse(s: &str) -> Option<Preset> {
        let up = s.to_ascii_uppercase();
        let alias = match up.as_str() {
            "Q3_K" => "Q3_K_M",
            "Q4_K" => "Q4_K_M",
            "Q5_K" => "Q5_K_M",
            other => other,
        };
        if let Some((p, _)) = MIXES.iter().find(|(_, n)| *n == alias) {
            return Some(*p);
        }
        GgmlType::from_name(alias)
            .filter(|t| UNIFORM.contains(t))
            .map(Preset::Uniform)
    }

    /// Every accepted `--type` name, for help text and errors.
    pub fn names() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = UNIFORM.iter().map(|t| t.name()).collect();
        v.extend(MIXES.iter().map(|(_, n)| *n));
        v
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Uniform(t) => t.name(),
            mix => MIXES
                .iter()
                .find(|(p, _)| *p == mix)
                .map(|(_, n)| *n)
                .unwrap_or("?"),
        }
    }

    /// The type most weights get.
    pub fn base_type(self) -> GgmlType {
        match self {
            Preset::Uniform(t) => t,
            Preset::Q2_K | Preset::Q2_K_S => GgmlType::Q2_K,
            Preset::Q3_K_S | Preset::Q3_K_M | Preset::Q3_K_L => GgmlType::Q3_K,
            Preset::Q4_K_S | Preset::Q4_K_M => GgmlType::Q4_K,
            Preset::Q5_K_S | Preset::Q5_K_M => GgmlType::Q5_K,
        }
    }

    /// llama.cpp's `general.file_type` (enum llama_ftype) for this preset, so tools that display
    /// it name the mix correctly.
    pub fn file_type(self) -> u32 {
        match self {
            Preset::Uniform(t) => match t {
                GgmlType::F32 => 0,
                GgmlType::F16 => 1,
                GgmlType::Q4_0 => 2,
                GgmlType::Q4_1 => 3,
                GgmlType::Q8_0 => 7,
                GgmlType::Q5_0 => 8,
                GgmlType::Q5_1 => 9,
                GgmlType::Q6_K => 18,
                GgmlType::IQ4_NL => 25,
                GgmlType::IQ4_XS => 30,
                GgmlType::BF16 => 32,
                GgmlType::TQ1_0 => 36,
                GgmlType::TQ2_0 => 37,
                GgmlType::MXFP4 => 38,
                _ => 1024, // LLAMA_FTYPE_GUESSED: not a named llama.cpp mix
            },
            Preset::Q2_K => 10,
            Preset::Q3_K_S => 11,
            Preset::Q3_K_M => 12,
            Preset::Q3_K_L => 13,
            Preset::Q4_K_S => 14,
            Preset::Q4_K_M => 15,
            Preset::Q5_K_S => 16,
            Preset::Q5_K_M => 17,
            Preset::Q2_K_S => 21,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mixes_aliases_and_uniform_types() {
        assert_eq!(Preset::parse("q4_k_m"), Some(Preset::Q4_K_M));
        assert_eq!(Preset::parse("Q4_K"), Some(Preset::Q4_K_M));
        assert_eq!(Preset::parse("Q8_0"), Some(Preset::Uniform(GgmlType::Q8_0)));
        assert_eq!(Preset::parse("IQ2_XXS"), None, "grid types are read-only");
        assert_eq!(Preset::parse("Q4_K_X"), None);
        for n in Preset::names() {
            assert_eq!(Preset::parse(n).map(|p| p.name()), Some(n));
        }
    }
}
