//! Which instruction-set level the kernels use, detected once per process.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    Avx512,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512-vnni",
        }
    }

    /// Every level the running CPU supports, lowest first (tests walk these).
    pub fn supported() -> Vec<Level> {
        [Level::Scalar, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|&l| l <= detected())
            .collect()
    }
}

/// The best level this CPU supports; `LOWBIT_KERNELS=scalar|avx2` caps it (for comparisons).
pub fn detected() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = probe();
        match std::env::var("LOWBIT_KERNELS").as_deref() {
            Ok("scalar") => Level::Scalar,
            Ok("avx2") => best.min(Level::Avx2),
            _ => best,
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn probe() -> Level {
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    let avx512 = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vnni");
    if avx512 {
        Level::Avx512
    } else if avx2 {
        Level::Avx2
    } else {
        Level::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn probe() -> Level {
    Level::Scalar
}
