//! AVX-512 VNNI kernels for generation: a run of weight rows per call against one activation
//! row.
//!
//! Why: at one token per matmul the 4-bit formats are limited by the work per 32-element block
//! (unpacking, the integer dot, the scale multiply) more than by memory bandwidth. `vpdpbusd`
//! multiplies unsigned by signed bytes and accumulates in i32 in one instruction, replacing the
//! AVX2 sign / maddubs / madd chain. Its unsigned operand is the weight: nibble formats are
//! unsigned before their centring offset, and signed codebooks become unsigned by adding 128;
//! the offset is taken back per block as `bias · Σx`, itself one `vpdpbusd` on the activations.
//!
//! Measured and left out (so the AVX2 kernels serve them at this level): Q8_0 and F16/F32 are
//! bound by memory bandwidth and were no faster. Walking several rows side by side (to share
//! the activation loads) was slower: it turns one long sequential stream into short per-row
//! streams the hardware prefetcher does not follow, so rows are walked one after another.
//!
//! Every kernel is exact in integers per block and only the float accumulation order differs
//! from the portable twins, so the twin tests bound them tightly.

use super::avx2::{f16, hsum};
use super::act::{ActKind, ActRow};
use super::RowsDot;
use lowbit_formats::GgmlType;
use std::arch::x86_64::*;

/// The multi-row kernel for a weight type, if this level has one.
pub fn kernel(ty: GgmlType) -> Option<(ActKind, RowsDot)> {
    use ActKind::*;
    Some(match ty {
        GgmlType::Q4_0 => (Q8x32, q4_0),
        GgmlType::Q4_1 => (Q8x32, q4_1),
        GgmlType::Q5_0 => (Q8x32, q5_0),
        GgmlType::Q5_1 => (Q8x32, q5_1),
        GgmlType::IQ4_NL => (Q8x32, iq4_nl),
        GgmlType::MXFP4 => (Q8x32, mxfp4),
        _ => return None,
    })
}

/// Calls `rows32::<K>` for every row of `w` (row stride `rb`) into `out`.
macro_rules! rows {
    ($($name:ident = $k:ty),*) => {
        $(
            fn $name(w: &[u8], rb: usize, a: &ActRow, out: &mut [f32]) {
                assert!(w.len() >= out.len() * rb);
                for (r, o) in out.iter_mut().enumerate() {
                    // SAFETY: reached only through `kernels::rows_kernel` at the AVX-512 level,
                    // whose CPU check covers every feature `rows32` enables; row r lies inside
                    // `w` (checked above) and `rows32` checks the row length against `a`.
                    *o = unsafe { rows32::<$k>(w.as_ptr().add(r * rb), rb, a) };
                }
            }
        )*
    };
}

rows!(
    q4_0 = Q4_0,
    q4_1 = Q4_1,
    q5_0 = Q5_0,
    q5_1 = Q5_1,
    iq4_nl = Iq4Nl,
    mxfp4 = Mxfp4
);

/// The 32 nibbles of a 16-byte array in element order (low nibbles, then high nibbles).
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let raw = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// One 32-element block format: how to get its quants as unsigned bytes and its scale.
trait Block32 {
    /// Bytes per block.
    const B: usize;
    /// What was added to make the quants unsigned (0 when they already are, as stored).
    const BIAS: u8;
    /// Whether an f16 min at byte 2 multiplies the activation block sum (Q4_1, Q5_1).
    const MIN: bool;
    /// A 16-entry byte table the quants are looked up in (codebook formats), else unused.
    const LUT: [u8; 16] = [0; 16];
    unsafe fn quants(b: *const u8, lut: __m256i) -> __m256i;
    unsafe fn scale(b: *const u8) -> f32;
}

/// Nibbles at byte `QS`, plus a fifth bit per element from the u32 at `QS - 4` when `FIVE`.
#[inline(always)]
unsafe fn legacy_quants<const QS: usize, const FIVE: bool>(b: *const u8) -> __m256i {
    let q = nibbles(b.add(QS));
    if FIVE {
        let bits = (b.add(QS - 4) as *const u32).read_unaligned();
        _mm256_mask_add_epi8(q, bits, q, _mm256_set1_epi8(16))
    } else {
        q
    }
}

struct Q4_0;
impl Block32 for Q4_0 {
    const B: usize = 18;
    const BIAS: u8 = 8;
    const MIN: bool = false;
    #[inline(always)]
    unsafe fn quants(b: *const u8, _: __m256i) -> __m256i {
        legacy_quants::<2, false>(b)
    }
    #[inline(always)]
    unsafe fn scale(b: *const u8) -> f32 {
        f16(b)
    }
}

struct Q4_1;
impl Block32 for Q4_1 {
    const B: usize = 20;
    const BIAS: u8 = 0;
    const MIN: bool = true;
    #[inline(always)]
    unsafe fn quants(b: *const u8, _: __m256i) -> __m256i {
        legacy_quants::<4, false>(b)
    }
    #[inline(always)]
    unsafe fn scale(b: *const u8) -> f32 {
        f16(b)
    }
}

struct Q5_0;
impl Block32 for Q5_0 {
    const B: usize = 22;
    const BIAS: u8 = 16;
    const MIN: bool = false;
    #[inline(always)]
    unsafe fn quants(b: *const u8, _: __m256i) -> __m256i {
        legacy_quants::<6, true>(b)
    }
    #[inline(always)]
    unsafe fn scale(b: *const u8) -> f32 {
        f16(b)
    }
}

struct Q5_1;
impl Block32 for Q5_1 {
    const B: usize = 24;
    const BIAS: u8 = 0;
    const MIN: bool = true;
    #[inline(always)]
    unsafe fn quants(b: *const u8, _: __m256i) -> __m256i {
        legacy_quants::<8, true>(b)
    }
    #[inline(always)]
    unsafe fn scale(b: *const u8) -> f32 {
        f16(b)
    }
}

/// A signed codebook shifted by 128 into unsigned bytes.
const fn biased(t: &[i8; 16]) -> [u8; 16] {
    let mut o = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        o[i] = (t[i] as i16 + 128) as u8;
        i += 1;
    }
    o
}

struct Iq4Nl;
impl Block32 for Iq4Nl {
    const B: usize = 18;
    const BIAS: u8 = 128;
    const MIN: bool = false;
    const LUT: [u8; 16] = biased(&lowbit_formats::iq4::KVALUES);
    #[inline(always)]
    unsafe fn quants(b: *const u8, lut: __m256i) -> __m256i {
        _mm256_shuffle_epi8(lut, nibbles(b.add(2)))
    }
    #[inline(always)]
    unsafe fn scale(b: *const u8) -> f32 {
        f16(b)
    }
}

struct Mxfp4;
impl Block32 for Mxfp4 {
    const B: usize = 17;
    const BIAS: u8 = 128;
    const MIN: bool = false;
    const LUT: [u8; 16] = biased(&lowbit_formats::mxfp4::E2M1_DOUBLED);
    #[inline(always)]
    unsafe fn quants(b: *const u8, lut: __m256i) -> __m256i {
        _mm256_shuffle_epi8(lut, nibbles(b.add(1)))
    }
    #[inline(always)]
    unsafe fn scale(b: *const u8) -> f32 {
        lowbit_formats::mxfp4::e8m0_to_f32_half(*b)
    }
}

/// One row of 32-element blocks (`rb` bytes from `w`) · one Q8x32 activation row.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn rows32<K: Block32>(w: *const u8, rb: usize, a: &ActRow) -> f32 {
    let nb = a.d.len();
    assert!(K::B * nb <= rb && a.qs.len() >= 32 * nb && (!K::MIN || a.sums.len() >= nb));
    let xp = a.qs.as_ptr();
    let lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(K::LUT.as_ptr() as *const __m128i));
    let bias = _mm256_set1_epi8(K::BIAS as i8);
    let zero = _mm256_setzero_si256();
    // Two accumulators (even / odd blocks) halve the loop-carried FMA chain.
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut mins = 0f32;
    for i in 0..nb {
        let x = _mm256_loadu_si256(xp.add(32 * i) as *const __m256i);
        // −bias·Σx spread over the lanes; the block's dot starts from it.
        let start = if K::BIAS != 0 {
            _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, bias, x))
        } else {
            zero
        };
        let b = w.add(K::B * i);
        let v = _mm256_dpbusd_epi32(start, K::quants(b, lut), x);
        let k = _mm256_set1_ps(K::scale(b) * *a.d.get_unchecked(i));
        acc[i & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), k, acc[i & 1]);
        if K::MIN {
            mins += f16(b.add(2)) * *a.sums.get_unchecked(i);
        }
    }
    hsum(_mm256_add_ps(acc[0], acc[1])) + mins
}
