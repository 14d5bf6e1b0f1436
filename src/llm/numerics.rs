//! The float routines of the forward pass whose rounding decides parity with llama.cpp's CPU
//! backend (AVX-512 build): its polynomial `exp` (behind SiLU and softmax), its softmax
//! normalisation, and the lane orders of its f32 dot products.
//!
//! Each is written as scalar code that performs the same IEEE operations in the same order, so
//! the results are equal to the bit. The differences are a rounding step each, but a rounding
//! step before an activation is quantized to 8 bits can move the quantized value by one, and
//! that moves the logits of a 30-layer model by about 0.1.
//!
//! The hot ones also run as AVX-512 or AVX2 code, picked once at run time from the CPU's
//! features ([`Kernel`]); the tests check every kernel the CPU has against the scalar code, bit
//! for bit.

use std::sync::OnceLock;

/// Lanes of one AVX-512 register of f32.
pub const LANES: usize = 16;

/// The code that runs the routines below; every one gives the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// One 16-lane register per group of 16 (AVX-512F).
    Avx512,
    /// Two 8-lane registers per group of 16 (AVX2 and FMA).
    Avx2,
    /// Plain code.
    Scalar,
}

impl Kernel {
    /// The fastest kernel this CPU runs, detected once.
    pub fn detect() -> Kernel {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| Kernel::available()[0])
    }

    /// Every kernel this CPU runs, fastest first (the plain code last).
    pub fn available() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                kernels.push(Kernel::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels.push(Kernel::Scalar);
        kernels
    }
}

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
#[inline]
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
    match Kernel::detect() {
        // SAFETY: `Kernel::available` found the features.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => unsafe { simd::swiglu_avx512(gate, up, width) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { simd::swiglu_avx2(gate, up, width) },
        _ => swiglu_rows(gate, up, width, swiglu16_scalar),
    }
}

/// [`swiglu`] with `group` for each whole group of 16.
#[inline(always)]
fn swiglu_rows(
    gate: &mut [f32],
    up: &[f32],
    width: usize,
    mut group: impl FnMut(&mut [f32; LANES], &[f32; LANES]),
) {
    for (g, u) in gate.chunks_exact_mut(width).zip(up.chunks_exact(width)) {
        let whole = width - width % LANES;
        for (g, u) in g[..whole]
            .chunks_exact_mut(LANES)
            .zip(u[..whole].chunks_exact(LANES))
        {
            group(g.try_into().unwrap(), u.try_into().unwrap());
        }
        for (g, u) in g[whole..].iter_mut().zip(&u[whole..]) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
    }
}

#[inline]
fn swiglu16_scalar(g: &mut [f32; LANES], u: &[f32; LANES]) {
    for (g, u) in g.iter_mut().zip(u) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// `e^x` of 16 values with [`exp`].
fn exp16(x: &mut [f32; LANES]) {
    exp16_with(Kernel::detect(), x)
}

/// [`exp16`] by `kernel`, one this CPU runs.
fn exp16_with(kernel: Kernel, x: &mut [f32; LANES]) {
    match kernel {
        // SAFETY: `Kernel::available` found the features.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => unsafe { simd::exp16_avx512(x) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { simd::exp16_avx2(x) },
        _ => exp16_scalar(x),
    }
}

fn exp16_scalar(x: &mut [f32; LANES]) {
    for x in x {
        *x = exp(*x);
    }
}

/// The same operations in registers: the tests check them against the scalar code.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::*;
    use std::arch::x86_64::*;

    /// [`exp`] of one AVX-512 register.
    #[target_feature(enable = "avx512f")]
    fn exp_ps(x: __m512) -> __m512 {
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

    /// [`exp`] of one AVX2 register. The scale by `2^n` is a product with a power of two,
    /// exact (so rounded once, as [`exp`] rounds) while the result is a normal float, which
    /// `|n| <= 125` guarantees (`e^b` is within [0.7, 1.42]); a register with some other `n`
    /// (or a NaN) is computed by [`exp`] lane by lane.
    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        let round = _mm256_set1_ps(ROUND);
        let z = _mm256_fmadd_ps(x, _mm256_set1_ps(LOG2_E), round);
        let n = _mm256_sub_ps(z, round);
        let b = _mm256_fnmadd_ps(
            n,
            _mm256_set1_ps(LN2_LO),
            _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x),
        );
        let u = _mm256_mul_ps(b, b);
        let high = _mm256_fmadd_ps(
            _mm256_fmadd_ps(_mm256_set1_ps(P5), b, _mm256_set1_ps(P4)),
            u,
            _mm256_fmadd_ps(_mm256_set1_ps(P3), b, _mm256_set1_ps(P2)),
        );
        let j = _mm256_fmadd_ps(
            high,
            u,
            _mm256_fmadd_ps(_mm256_set1_ps(P1), b, _mm256_set1_ps(1.0)),
        );
        let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
        let normal = _mm256_cmp_ps::<_CMP_LE_OQ>(abs_n, _mm256_set1_ps(125.0));
        if _mm256_movemask_ps(normal) != 0xff {
            let mut v = [0f32; 8];
            // SAFETY: 8 floats are written.
            unsafe { _mm256_storeu_ps(v.as_mut_ptr(), x) };
            for v in &mut v {
                *v = exp(*v);
            }
            // SAFETY: 8 floats are read.
            return unsafe { _mm256_loadu_ps(v.as_ptr()) };
        }
        let pow = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(j, _mm256_castsi256_ps(pow))
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp16_avx512(x: &mut [f32; LANES]) {
        let v = _mm512_loadu_ps(x.as_ptr());
        _mm512_storeu_ps(x.as_mut_ptr(), exp_ps(v));
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp16_avx2(x: &mut [f32; LANES]) {
        for h in 0..2 {
            let p = x.as_mut_ptr().add(h * 8);
            _mm256_storeu_ps(p, exp8(_mm256_loadu_ps(p)));
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn swiglu16_avx512(g: &mut [f32; LANES], u: &[f32; LANES]) {
        let x = _mm512_loadu_ps(g.as_ptr());
        let e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
        let silu = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e));
        _mm512_storeu_ps(
            g.as_mut_ptr(),
            _mm512_mul_ps(silu, _mm512_loadu_ps(u.as_ptr())),
        );
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn swiglu16_avx2(g: &mut [f32; LANES], u: &[f32; LANES]) {
        for h in 0..2 {
            let (p, q) = (g.as_mut_ptr().add(h * 8), u.as_ptr().add(h * 8));
            let x = _mm256_loadu_ps(p);
            // -x flips the sign bit, as the scalar negation does
            let e = exp8(_mm256_xor_ps(x, _mm256_set1_ps(-0.0)));
            let silu = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e));
            _mm256_storeu_ps(p, _mm256_mul_ps(silu, _mm256_loadu_ps(q)));
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn swiglu_avx512(gate: &mut [f32], up: &[f32], width: usize) {
        swiglu_rows(gate, up, width, |g, u| swiglu16_avx512(g, u))
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn swiglu_avx2(gate: &mut [f32], up: &[f32], width: usize) {
        swiglu_rows(gate, up, width, |g, u| swiglu16_avx2(g, u))
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn mul_add_to_avx512(acc: &mut [f32], v: &[f32], p: f32) {
        mul_add_to_plain(acc, v, p)
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn mul_add_to_avx2(acc: &mut [f32], v: &[f32], p: f32) {
        mul_add_to_plain(acc, v, p)
    }

    /// The horizontal sum in [`reduce16`]'s order, from lanes 0..8 and 8..16.
    #[target_feature(enable = "avx2")]
    fn hsum(low: __m256, high: __m256) -> f32 {
        let h = _mm256_add_ps(low, high);
        let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let r = _mm_add_ps(q, _mm_shuffle_ps::<0b01_00_11_10>(q, q));
        _mm_cvtss_f32(r) + _mm_cvtss_f32(_mm_shuffle_ps::<1>(r, r))
    }

    /// # Safety
    /// The CPU must have AVX-512F; `a` and `b` hold the same multiple of 64 values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_four_whole_avx512(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 4];
        for i in (0..a.len()).step_by(4 * LANES) {
            for (k, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_loadu_ps(a.as_ptr().add(i + k * LANES));
                let y = _mm512_loadu_ps(b.as_ptr().add(i + k * LANES));
                *acc = _mm512_fmadd_ps(x, y, *acc);
            }
        }
        let v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
        hsum(
            _mm512_castps512_ps256(v),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
        )
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA; `a` and `b` hold the same multiple of 64 values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_four_whole_avx2(a: &[f32], b: &[f32]) -> f32 {
        // accumulator k, lanes 8h..8h + 8 in acc[2k + h]
        let mut acc = [_mm256_setzero_ps(); 8];
        for i in (0..a.len()).step_by(4 * LANES) {
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(a.as_ptr().add(i + r * 8));
                let y = _mm256_loadu_ps(b.as_ptr().add(i + r * 8));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
        }
        let half = |h: usize| {
            _mm256_add_ps(
                _mm256_add_ps(acc[h], acc[4 + h]),
                _mm256_add_ps(acc[2 + h], acc[6 + h]),
            )
        };
        hsum(half(0), half(1))
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

/// `acc[i] = v[i] * p + acc[i]`, fused (one rounding), for every `i`: the same bits on every
/// kernel, in registers where the CPU has FMA.
pub fn mul_add_to(acc: &mut [f32], v: &[f32], p: f32) {
    match Kernel::detect() {
        // SAFETY: `Kernel::available` found the features.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => unsafe { simd::mul_add_to_avx512(acc, v, p) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { simd::mul_add_to_avx2(acc, v, p) },
        _ => mul_add_to_plain(acc, v, p),
    }
}

#[inline(always)]
fn mul_add_to_plain(acc: &mut [f32], v: &[f32], p: f32) {
    assert_eq!(acc.len(), v.len());
    for (acc, &v) in acc.iter_mut().zip(v) {
        *acc = v.mul_add(p, *acc);
    }
}

/// [`dot_four`] of lengths that are a multiple of 64.
fn dot_four_whole(a: &[f32], b: &[f32]) -> f32 {
    dot_four_whole_with(Kernel::detect(), a, b)
}

/// [`dot_four_whole`] by `kernel`, one this CPU runs.
fn dot_four_whole_with(kernel: Kernel, a: &[f32], b: &[f32]) -> f32 {
    assert!(a.len() == b.len() && a.len().is_multiple_of(4 * LANES));
    match kernel {
        // SAFETY: `Kernel::available` found the features; the lengths are checked above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => unsafe { simd::dot_four_whole_avx512(a, b) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { simd::dot_four_whole_avx2(a, b) },
        _ => dot_four_whole_scalar(a, b),
    }
}

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

    /// Equal bits, or both NaN.
    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }

    /// `swiglu` of whole rows by `kernel`.
    fn swiglu_with(kernel: Kernel, gate: &mut [f32], up: &[f32], width: usize) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { simd::swiglu_avx512(gate, up, width) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { simd::swiglu_avx2(gate, up, width) },
            _ => swiglu_rows(gate, up, width, swiglu16_scalar),
        }
    }

    #[test]
    fn every_kernel_computes_exp_and_swiglu_as_the_scalar_code_to_the_bit() {
        let kernels = Kernel::available();
        assert_eq!(kernels.last(), Some(&Kernel::Scalar));
        assert_eq!(Kernel::detect(), kernels[0]);
        let mut v = samples();
        // values around the edges of the AVX2 scale (|n| = 125, 126) and of 192, and a NaN
        for n in [
            -193.0f32, -192.0, -127.0, -126.0, -125.0, 125.0, 126.0, 128.0, 192.0,
        ] {
            for d in [-0.6f32, -0.49, -0.3, 0.0, 0.3, 0.49, 0.6] {
                v.push((n + d) * std::f32::consts::LN_2);
            }
        }
        v.push(f32::NAN);
        // every sample in both halves of a group of 16
        let shifted: Vec<f32> = v[8..].iter().chain(&v[..8]).copied().collect();
        for &k in &kernels {
            for v in [&v, &shifted] {
                for (x, g) in v.chunks_exact(LANES).zip(v.rchunks_exact(LANES)) {
                    let (x, g): (&[f32; LANES], &[f32; LANES]) =
                        (x.try_into().unwrap(), g.try_into().unwrap());
                    let (mut a, mut b) = (*x, *x);
                    exp16_with(k, &mut a);
                    exp16_scalar(&mut b);
                    assert!(same(&a, &b), "{k:?}: exp of {x:?}");
                    let (mut a, mut b) = (*x, *x);
                    swiglu_with(k, &mut a, g, LANES);
                    swiglu16_scalar(&mut b, g);
                    assert!(same(&a, &b), "{k:?}: swiglu of {x:?}");
                }
            }
            // rows with a part group at the end
            let width = 40;
            let rows = v.len() / width;
            let (g, u) = (&v[..rows * width], &shifted[..rows * width]);
            let (mut a, mut b) = (g.to_vec(), g.to_vec());
            swiglu_with(k, &mut a, u, width);
            swiglu_with(Kernel::Scalar, &mut b, u, width);
            assert!(same(&a, &b), "{k:?}");
        }
    }

    #[test]
    fn every_kernel_computes_the_dot_product_as_the_scalar_code_to_the_bit() {
        let v = samples();
        let v: Vec<f32> = v.into_iter().filter(|x| x.is_finite()).collect();
        for k in Kernel::available() {
            for n in [64, 128, 192, 640] {
                for (a, b) in v.chunks_exact(n).zip(v.rchunks_exact(n)).take(50) {
                    let (x, y) = (dot_four_whole_with(k, a, b), dot_four_whole_scalar(a, b));
                    assert_eq!(x.to_bits(), y.to_bits(), "{k:?}: {x} {y}");
                }
            }
        }
        // the fused multiply-add of rows
        let a = &v[..1003];
        let mut acc = v[2000..3003].to_vec();
        let mut want = acc.clone();
        mul_add_to(&mut acc, a, 0.37);
        for (w, &x) in want.iter_mut().zip(a) {
            *w = x.mul_add(0.37, *w);
        }
        assert_eq!(acc, want);
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
