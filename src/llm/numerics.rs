//! The float routines of the forward pass whose rounding decides parity with llama.cpp's CPU
//! backend (AVX-512 build): its polynomial `exp` (behind SiLU and softmax), its softmax
//! normalisation, and the lane orders of its f32 dot products.
//!
//! Each is written as scalar code that performs the same IEEE operations in the same order, so
//! the results are equal to the bit. The differences are a rounding step each, but a rounding
//! step before an activation is quantized to 8 bits can move the quantized value by one, and
//! that moves the logits of a 30-layer model by about 0.1.

/// Lanes of one AVX-512 register of f32.
pub const LANES: usize = 16;

const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds a float to an integer
const LOG2_E: f32 = f32::from_bits(0x3fb8_aa3b);
const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
const P1: f32 = f32::from_bits(0x3f7f_fff6);
const P2: f32 = f32::from_bits(0x3eff_fedb);
const P3: f32 = f32::from_bits(0x3e2a_af33);
const P4: f32 = f32::from_bits(0x3d2b_9f17);
const P5: f32 = f32::from_bits(0x3c07_2010);

/// `e^x` the way llama.cpp's AVX-512 kernels compute it: `x = n ln 2 + b` with `n` an integer
/// (ln 2 split in two parts), a degree-5 polynomial for `e^b`, then a scale by `2^n`. Its error
/// is under 2 ulp; beyond |n| > 192 it is 0 or infinity.
pub fn exp(x: f32) -> f32 {
    let z = x.mul_add(LOG2_E, ROUND);
    let n = z - ROUND;
    let b = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let u = b * b;
    let high = P5.mul_add(b, P4).mul_add(u, P3.mul_add(b, P2));
    let j = high.mul_add(u, P1.mul_add(b, 1.0));
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    // j * 2^n with one rounding, as a scale instruction does (the product is exact in f64)
    let scale = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (j as f64 * scale) as f32
}

/// `silu(gate) * up` in place over rows of `width`: whole groups of 16 with [`exp`], the rest of
/// a row with the C library's `expf`, as llama.cpp's fused SwiGLU does.
pub fn swiglu(gate: &mut [f32], up: &[f32], width: usize) {
    for (g, u) in gate.chunks_exact_mut(width).zip(up.chunks_exact(width)) {
        let whole = width - width % LANES;
        for (g, u) in g[..whole]
            .chunks_exact_mut(LANES)
            .zip(u[..whole].chunks_exact(LANES))
        {
            swiglu16(g.try_into().unwrap(), u.try_into().unwrap());
        }
        for (g, u) in g[whole..].iter_mut().zip(&u[whole..]) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
fn swiglu16(g: &mut [f32; LANES], u: &[f32; LANES]) {
    swiglu16_scalar(g, u)
}

#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "avx512f"),
    allow(dead_code)
)]
fn swiglu16_scalar(g: &mut [f32; LANES], u: &[f32; LANES]) {
    for (g, u) in g.iter_mut().zip(u) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// `e^x` of 16 values with [`exp`].
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
fn exp16(x: &mut [f32; LANES]) {
    exp16_scalar(x)
}

#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "avx512f"),
    allow(dead_code)
)]
fn exp16_scalar(x: &mut [f32; LANES]) {
    for x in x {
        *x = exp(*x);
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
use simd::{dot_four_whole, exp16, swiglu16};

/// The same operations on one AVX-512 register: the tests check them against the scalar code.
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod simd {
    use super::*;
    use std::arch::x86_64::*;

    /// # Safety
    /// Needs AVX-512F, which this module's `cfg` guarantees.
    #[inline]
    unsafe fn exp_ps(x: __m512) -> __m512 {
        let round = _mm512_set1_ps(ROUND);
        let z = _mm512_fmadd_ps(x, _mm512_set1_ps(LOG2_E), round);
        let n = _mm512_sub_ps(z, round);
        let b = _mm512_fnmadd_ps(
            n,
            _mm512_set1_ps(LN2_LO),
            _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x),
        );
        let u = _mm512_mul_ps(b, b);
        let high = _mm512_fmadd_ps(
            _mm512_fmadd_ps(_mm512_set1_ps(P5), b, _mm512_set1_ps(P4)),
            u,
            _mm512_fmadd_ps(_mm512_set1_ps(P3), b, _mm512_set1_ps(P2)),
        );
        let j = _mm512_fmadd_ps(
            high,
            u,
            _mm512_fmadd_ps(_mm512_set1_ps(P1), b, _mm512_set1_ps(1.0)),
        );
        let res = _mm512_scalef_ps(j, n);
        let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
        if big == 0 {
            return res;
        }
        let zero = _mm512_setzero_ps();
        let negative = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero);
        let alt = _mm512_mask_blend_ps(negative, _mm512_set1_ps(f32::INFINITY), zero);
        _mm512_mask_blend_ps(big, res, alt)
    }

    /// The horizontal sum in [`reduce16`]'s order.
    #[inline]
    unsafe fn hsum(v: __m512) -> f32 {
        let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        let h = _mm256_add_ps(_mm512_castps512_ps256(v), high);
        let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let r = _mm_add_ps(q, _mm_shuffle_ps::<0b01_00_11_10>(q, q));
        _mm_cvtss_f32(r) + _mm_cvtss_f32(_mm_shuffle_ps::<1>(r, r))
    }

    pub fn dot_four_whole(a: &[f32], b: &[f32]) -> f32 {
        assert!(a.len() == b.len() && a.len().is_multiple_of(4 * LANES));
        // SAFETY: the loads stay inside `a` and `b` (checked above).
        unsafe {
            let mut acc = [_mm512_setzero_ps(); 4];
            for i in (0..a.len()).step_by(4 * LANES) {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_loadu_ps(a.as_ptr().add(i + k * LANES));
                    let y = _mm512_loadu_ps(b.as_ptr().add(i + k * LANES));
                    *acc = _mm512_fmadd_ps(x, y, *acc);
                }
            }
            hsum(_mm512_add_ps(
                _mm512_add_ps(acc[0], acc[2]),
                _mm512_add_ps(acc[1], acc[3]),
            ))
        }
    }

    pub fn exp16(x: &mut [f32; LANES]) {
        // SAFETY: 16 floats are read and written.
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr());
            _mm512_storeu_ps(x.as_mut_ptr(), exp_ps(v));
        }
    }

    pub fn swiglu16(g: &mut [f32; LANES], u: &[f32; LANES]) {
        // SAFETY: 16 floats are read from each and written to `g`.
        unsafe {
            let x = _mm512_loadu_ps(g.as_ptr());
            let e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
            let silu = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e));
            _mm512_storeu_ps(
                g.as_mut_ptr(),
                _mm512_mul_ps(silu, _mm512_loadu_ps(u.as_ptr())),
            );
        }
    }
}

/// The horizontal sum of one 16-lane register, halving it as the AVX-512 reduction does:
/// 8 + 8, 4 + 4, 2 + 2, 1 + 1.
fn reduce16(lanes: &[f32]) -> f32 {
    let mut v: [f32; LANES] = lanes.try_into().expect("16 lanes");
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            v[i] += v[i + width];
        }
        width /= 2;
    }
    v[0]
}

/// The sum of one register of 16 lanes, or of four registers (64 lanes, register `k` holding
/// lanes `16k..16k + 16`) combined as (0 + 2) + (1 + 3) first, as `vec_dot_f32` does.
pub fn reduce(lanes: &[f32]) -> f32 {
    match lanes.len() {
        LANES => reduce16(lanes),
        64 => {
            let mut v = [0f32; LANES];
            for (l, v) in v.iter_mut().enumerate() {
                *v = (lanes[l] + lanes[2 * LANES + l]) + (lanes[LANES + l] + lanes[3 * LANES + l]);
            }
            reduce16(&v)
        }
        n => panic!("{n} lanes"),
    }
}

/// Softmax of `scores` in place: `e^(s - max)` with [`exp`], summed per 16 in f32 and across
/// groups in f64, then multiplied by the f32 reciprocal of the sum.
pub fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for group in scores.chunks_mut(LANES) {
        // a short last group is padded with masked positions, whose e^x is 0
        let mut lanes = [f32::NEG_INFINITY; LANES];
        for (lane, s) in lanes.iter_mut().zip(group.iter()) {
            *lane = *s - max;
        }
        exp16(&mut lanes);
        group.copy_from_slice(&lanes[..group.len()]);
        sum += reduce16(&lanes) as f64;
    }
    let inv = (1.0 / sum) as f32;
    for s in scores {
        *s *= inv;
    }
}

/// A dot product with four 16-lane accumulators (element `i` in accumulator `i / 16 % 4`),
/// combined as (0 + 2) + (1 + 3), then [`reduce`]; elements past the last whole 64 are added
/// one by one. llama.cpp's `vec_dot_f32`, used for attention scores.
pub fn dot_four(a: &[f32], b: &[f32]) -> f32 {
    let whole = a.len() - a.len() % (4 * LANES);
    let mut sum = dot_four_whole(&a[..whole], &b[..whole]) as f64;
    for (x, y) in a[whole..].iter().zip(&b[whole..]) {
        sum += (x * y) as f64;
    }
    sum as f32
}

/// [`dot_four`] of lengths that are a multiple of 64.
#[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
fn dot_four_whole(a: &[f32], b: &[f32]) -> f32 {
    dot_four_whole_scalar(a, b)
}

#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "avx512f"),
    allow(dead_code)
)]
fn dot_four_whole_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 4 * LANES];
    for (x, y) in a.chunks_exact(4 * LANES).zip(b.chunks_exact(4 * LANES)) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc = x.mul_add(y, *acc);
        }
    }
    reduce(&acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_the_library() {
        let mut worst = 0i64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max((a.to_bits() as i64 - b.to_bits() as i64).abs());
            x += 0.0137;
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(200.0), f32::INFINITY);
    }

    /// Values across the range of activations and of softmax arguments, and the edges.
    fn samples() -> Vec<f32> {
        let mut v: Vec<f32> = (0..40_000)
            .map(|i| (i as f32 - 20_000.0) * 0.0061)
            .collect();
        v.extend([
            0.0,
            -0.0,
            88.7,
            -103.0,
            -150.0,
            1e-30,
            f32::NEG_INFINITY,
            f32::INFINITY,
        ]);
        v.extend((0..2000).map(|i| ((i as f32) * 0.37).sin() * 12.0));
        v
    }

    #[test]
    fn the_simd_exp_and_swiglu_equal_the_scalar_code_to_the_bit() {
        let v = samples();
        for (x, g) in v.chunks_exact(LANES).zip(v.rchunks_exact(LANES)) {
            let (x, g): (&[f32; LANES], &[f32; LANES]) =
                (x.try_into().unwrap(), g.try_into().unwrap());
            let (mut a, mut b) = (*x, *x);
            exp16(&mut a);
            exp16_scalar(&mut b);
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "exp of {x:?}");
            let (mut a, mut b) = (*x, *x);
            swiglu16(&mut a, g);
            swiglu16_scalar(&mut b, g);
            assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "swiglu of {x:?}");
        }
    }

    #[test]
    fn the_simd_dot_product_equals_the_scalar_code_to_the_bit() {
        let v = samples();
        let v: Vec<f32> = v.into_iter().filter(|x| x.is_finite()).collect();
        for n in [64, 128, 192, 640] {
            for (a, b) in v.chunks_exact(n).zip(v.rchunks_exact(n)).take(50) {
                let (x, y) = (dot_four_whole(a, b), dot_four_whole_scalar(a, b));
                assert_eq!(x.to_bits(), y.to_bits(), "{x} {y}");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut s: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let orig = s.clone();
        softmax(&mut s);
        let total: f32 = s.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        let (i, j) = (3, 30);
        assert_eq!(orig[i] < orig[j], s[i] < s[j]);
    }

    #[test]
    fn the_dot_product_and_lane_sums_agree_with_plain_sums() {
        let a: Vec<f32> = (0..200).map(|i| (i as f32 * 0.31).cos()).collect();
        let b: Vec<f32> = (0..200).map(|i| (i as f32 * 0.17).sin()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| (x * y) as f64).sum();
        assert!((dot_four(&a, &b) as f64 - plain).abs() < 1e-4);
        assert_eq!(reduce(&[1.0; 16]), 16.0);
        let mut lanes = [0.0; 64];
        lanes[5] = 1.0;
        lanes[63] = 2.0;
        assert_eq!(reduce(&lanes), 3.0);
    }
}
