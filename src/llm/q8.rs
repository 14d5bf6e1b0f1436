//! Q8_0 matrix products with llama.cpp's arithmetic, in a layout for AVX-512 VNNI and AVX2.
//!
//! A GGUF Q8_0 row is a run of 34-byte blocks: an f16 scale `d` and 32 signed bytes `q`,
//! standing for `d * q`. The activation is quantized the same way (per 32 values, bytes
//! `round(x * 127 / max|x|)`, scale `max|x| / 127` as f16), so each block's dot product is an
//! exact integer sum of byte products times the two scales. llama.cpp keeps 8 f32 partial sums
//! per row, one per group of 4 values of a block (`partial += dw * dx * group_sum`, fused), and
//! adds them at the end as `((p4 + p0) + (p6 + p2)) + ((p5 + p1) + (p7 + p3))`; so does this
//! file, which makes the products equal to llama.cpp's to the bit.
//!
//! At load the rows are regrouped into tiles of [`TILE`] rows: per 32-value block, the 16 row
//! scales, then the bytes as `[4-value group][row][4 bytes]`, each stored plus 128 (unsigned).
//! One `vpdpbusd` then adds a group's 4 products for each of the 16 rows, the weights stream
//! through memory in one pass, and `128 * sum(activation group)` is taken off in integers.
//! AVX2 has no `vpdpbusd`: its kernel turns the bytes back into signed ones and multiplies
//! `|w|` by the activation with `w`'s sign (`vpmaddubsw`, which cannot saturate then), 8 rows
//! at a time. Both give the integer sums of the plain loop, which remains for other CPUs; the
//! kernel is picked once, at run time, from the CPU's features ([`Kernel`]). Tiles are split over
//! candle's CPU worker pool.

use std::sync::OnceLock;

use half::f16;

/// Values per block.
pub const BLOCK: usize = 32;
/// Bytes per GGUF block: the f16 scale, then 32 signed bytes.
pub const BLOCK_BYTES: usize = 34;
/// Rows per tile.
pub const TILE: usize = 16;
/// Groups of 4 values per block: llama.cpp keeps one f32 partial sum per group.
const GROUPS: usize = BLOCK / 4;
/// Bytes per tile and block: 16 f16 scales and 16 x 32 offset bytes.
const TILE_BLOCK_BYTES: usize = TILE * 2 + TILE * BLOCK;

/// A Q8_0 matrix of `rows` x `cols` (`cols` a multiple of 32), tiled.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// `[tile][block]` units of [`TILE_BLOCK_BYTES`].
    tiles: Vec<u8>,
}

/// Activation rows quantized to Q8_0: per block the scale, the 32 bytes and the sum of each
/// group of 4.
#[derive(Debug, Default, Clone)]
pub struct Q8Vector {
    rows: usize,
    scales: Vec<f32>,
    quants: Vec<i8>,
    sums: Vec<i32>,
}

/// The code that multiplies tiles; every one gives the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// One `vpdpbusd` per group of 4 values for all 16 rows of a tile.
    Avx512Vnni,
    /// `vpmaddubsw` on signed bytes, 8 rows at a time (with FMA and F16C).
    Avx2,
    /// The plain loop.
    Scalar,
}

impl Kernel {
    /// The fastest kernel this CPU runs, detected once.
    pub fn detect() -> Kernel {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| Kernel::available()[0])
    }

    /// Every kernel this CPU runs, fastest first (the plain loop last).
    pub fn available() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                kernels.push(Kernel::Avx512Vnni);
            }
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                kernels.push(Kernel::Avx2);
            }
        }
        kernels.push(Kernel::Scalar);
        kernels
    }
}

impl Q8Matrix {
    /// Whether this CPU multiplies tiles with SIMD (AVX-512 VNNI, or AVX2 with FMA and F16C);
    /// without it candle's kernels are faster.
    pub fn fast() -> bool {
        Kernel::detect() != Kernel::Scalar
    }

    /// Tiles GGUF Q8_0 bytes (`rows` x `cols`, row-major blocks); `None` when the length does
    /// not fit the shape.
    pub fn from_gguf_bytes(rows: usize, cols: usize, data: &[u8]) -> Option<Self> {
        if cols == 0
            || !cols.is_multiple_of(BLOCK)
            || data.len() != rows * cols / BLOCK * BLOCK_BYTES
        {
            return None;
        }
        let blocks = cols / BLOCK;
        let n_tiles = rows.div_ceil(TILE);
        // padding rows stay zero (scale 0, bytes 128 = value 0)
        let mut tiles = vec![0u8; n_tiles * blocks * TILE_BLOCK_BYTES];
        for t in 0..n_tiles {
            for b in 0..blocks {
                let unit = &mut tiles[(t * blocks + b) * TILE_BLOCK_BYTES..][..TILE_BLOCK_BYTES];
                unit[TILE * 2..].fill(128);
                for i in 0..TILE.min(rows - t * TILE) {
                    let r = t * TILE + i;
                    let src = &data[(r * blocks + b) * BLOCK_BYTES..][..BLOCK_BYTES];
                    unit[i * 2..i * 2 + 2].copy_from_slice(&src[..2]);
                    for (j, &q) in src[2..].iter().enumerate() {
                        unit[TILE * 2 + (j / 4) * TILE * 4 + i * 4 + j % 4] =
                            (q as i8 as i16 + 128) as u8;
                    }
                }
            }
        }
        Some(Q8Matrix { rows, cols, tiles })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn unit(&self, tile: usize, block: usize) -> &[u8] {
        let blocks = self.cols / BLOCK;
        &self.tiles[(tile * blocks + block) * TILE_BLOCK_BYTES..][..TILE_BLOCK_BYTES]
    }

    /// Row `r` as f32 (an embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let (t, i) = (r / TILE, r % TILE);
        for (b, out) in out.chunks_exact_mut(BLOCK).enumerate() {
            let unit = self.unit(t, b);
            let d = f16::from_bits(u16::from_le_bytes([unit[i * 2], unit[i * 2 + 1]])).to_f32();
            for (j, o) in out.iter_mut().enumerate() {
                let q = unit[TILE * 2 + (j / 4) * TILE * 4 + i * 4 + j % 4] as i16 - 128;
                *o = d * q as f32;
            }
        }
    }

    /// `out[m * rows + r] = row_r . x_m` for every row `r` and activation row `m`.
    pub fn matmul(&self, x: &Q8Vector, out: &mut [f32]) {
        assert_eq!(
            x.scales.len() * BLOCK,
            x.rows * self.cols,
            "activation length"
        );
        assert_eq!(out.len(), x.rows * self.rows, "output length");
        let n_tiles = self.rows.div_ceil(TILE);
        let out_ptr = out.as_mut_ptr() as usize;
        let kernel = Kernel::detect();
        let work = |range: std::ops::Range<usize>| {
            let mut sums = [0f32; TILE];
            for t in range {
                let first = t * TILE;
                let n = TILE.min(self.rows - first);
                for m in 0..x.rows {
                    self.tile_dot(kernel, t, x, m, &mut sums);
                    // SAFETY: each (tile, m) writes its own part of `out`, which outlives the
                    // pool call.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            (out_ptr as *mut f32).add(m * self.rows + first),
                            n,
                        )
                    };
                    dst.copy_from_slice(&sums[..n]);
                }
            }
        };
        if n_tiles * x.rows < 4 {
            work(0..n_tiles);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(n_tiles, work);
        }
    }

    /// The 16 dot products of tile `t` with activation row `m`, by `kernel` (one this CPU runs).
    fn tile_dot(&self, kernel: Kernel, t: usize, x: &Q8Vector, m: usize, out: &mut [f32; TILE]) {
        let blocks = self.cols / BLOCK;
        let tiles = &self.tiles[t * blocks * TILE_BLOCK_BYTES..][..blocks * TILE_BLOCK_BYTES];
        let first = m * blocks;
        let (quants, scales, sums) = (
            &x.quants[first * BLOCK..][..blocks * BLOCK],
            &x.scales[first..][..blocks],
            &x.sums[first * GROUPS..][..blocks * GROUPS],
        );
        match kernel {
            // SAFETY: `Kernel::available` found the features; the slices hold `blocks` blocks.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe {
                simd::tile_dot_avx512(tiles, quants, scales, sums, out)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { simd::tile_dot_avx2(tiles, quants, scales, out) },
            _ => tile_dot_scalar(tiles, quants, scales, sums, out),
        }
    }
}

/// The reference arithmetic: per row, group and block an integer sum, then
/// `partial[group] += dw * dx * sum` (fused), the 8 partials added in llama.cpp's order.
fn tile_dot_scalar(
    tiles: &[u8],
    quants: &[i8],
    scales: &[f32],
    sums: &[i32],
    out: &mut [f32; TILE],
) {
    for (i, o) in out.iter_mut().enumerate() {
        let mut lanes = [0f32; GROUPS];
        for (b, unit) in tiles.chunks_exact(TILE_BLOCK_BYTES).enumerate() {
            let dw = f16::from_bits(u16::from_le_bytes([unit[i * 2], unit[i * 2 + 1]])).to_f32();
            let d = dw * scales[b];
            for (g, lane) in lanes.iter_mut().enumerate() {
                let mut isum = 0i32;
                for j in g * 4..g * 4 + 4 {
                    isum += unit[TILE * 2 + g * TILE * 4 + i * 4 + j % 4] as i32
                        * quants[b * BLOCK + j] as i32;
                }
                isum -= 128 * sums[b * GROUPS + g];
                *lane = (isum as f32).mul_add(d, *lane);
            }
        }
        *o = combine(&lanes);
    }
}

/// llama.cpp's horizontal sum of its 8 partial sums.
fn combine(l: &[f32; GROUPS]) -> f32 {
    ((l[4] + l[0]) + (l[6] + l[2])) + ((l[5] + l[1]) + (l[7] + l[3]))
}

impl Q8Vector {
    /// Quantizes `x`, `rows` rows of equal length (a multiple of 32), replacing what this held.
    pub fn quantize(&mut self, x: &[f32], rows: usize) {
        assert!(
            rows > 0 && x.len().is_multiple_of(rows) && (x.len() / rows).is_multiple_of(BLOCK),
            "{} values in {rows} rows",
            x.len()
        );
        let blocks = x.len() / BLOCK;
        self.rows = rows;
        self.scales.resize(blocks, 0.0);
        self.quants.resize(x.len(), 0);
        self.sums.resize(blocks * GROUPS, 0);
        for (b, xs) in x.chunks_exact(BLOCK).enumerate() {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            // As llama.cpp's x86 code: bytes from x * 127 / max|x| rounded to even, the scale
            // max|x| / 127 kept as f16.
            let d = amax / 127.0;
            let inv = if amax == 0.0 { 0.0 } else { 127.0 / amax };
            self.scales[b] = f16::from_f32(d).to_f32();
            for (i, v) in xs.iter().enumerate() {
                let q = (v * inv).round_ties_even() as i8;
                self.quants[b * BLOCK + i] = q;
            }
            for g in 0..GROUPS {
                self.sums[b * GROUPS + g] = self.quants[b * BLOCK + g * 4..][..4]
                    .iter()
                    .map(|&q| q as i32)
                    .sum();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{BLOCK, GROUPS, TILE, TILE_BLOCK_BYTES};
    use std::arch::x86_64::*;

    /// [`super::tile_dot_scalar`] with one `vpdpbusd` per 4 values of all 16 rows, and one
    /// f32 partial sum per group of 4 (a register of 16 rows each).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `tiles`, `quants` and `sums` must hold the
    /// `scales.len()` blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile_dot_avx512(
        tiles: &[u8],
        quants: &[i8],
        scales: &[f32],
        sums: &[i32],
        out: &mut [f32; TILE],
    ) {
        let mut acc = [_mm512_setzero_ps(); GROUPS];
        for b in 0..scales.len() {
            let unit = tiles.as_ptr().add(b * TILE_BLOCK_BYTES);
            let a = quants.as_ptr().add(b * BLOCK);
            let w = unit.add(TILE * 2);
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(unit as *const __m256i));
            let d = _mm512_mul_ps(dw, _mm512_set1_ps(*scales.get_unchecked(b)));
            for (g, lane) in acc.iter_mut().enumerate() {
                let ag = _mm512_set1_epi32(std::ptr::read_unaligned(a.add(g * 4) as *const i32));
                let wg = _mm512_loadu_si512(w.add(g * TILE * 4) as *const _);
                let isum = _mm512_sub_epi32(
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), wg, ag),
                    _mm512_set1_epi32(128 * *sums.get_unchecked(b * GROUPS + g)),
                );
                *lane = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d, *lane);
            }
        }
        let l = acc;
        let sum = _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(l[4], l[0]), _mm512_add_ps(l[6], l[2])),
            _mm512_add_ps(_mm512_add_ps(l[5], l[1]), _mm512_add_ps(l[7], l[3])),
        );
        _mm512_storeu_ps(out.as_mut_ptr(), sum);
    }

    /// [`super::tile_dot_scalar`] on AVX2, one half of the tile (8 rows) after the other. The
    /// stored bytes `q + 128` become `q` again (`xor 0x80`); `vpmaddubsw(|q|, sign(a, q))` adds
    /// pairs of products, at most 2 * 128 * 127 (no saturation; an activation byte is
    /// -128 only where `1 / scale` overflows, and a block whose f16 scale is 0 adds nothing), and `vpmaddwd` with ones adds the
    /// pairs: each row's exact group sum, with no correction for the offset.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C; `tiles` and `quants` must hold the `scales.len()`
    /// blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn tile_dot_avx2(
        tiles: &[u8],
        quants: &[i8],
        scales: &[f32],
        out: &mut [f32; TILE],
    ) {
        let flip = _mm256_set1_epi8(-128);
        let ones = _mm256_set1_epi16(1);
        for half in 0..2 {
            let mut acc = [_mm256_setzero_ps(); GROUPS];
            for b in 0..scales.len() {
                let unit = tiles.as_ptr().add(b * TILE_BLOCK_BYTES);
                let a = quants.as_ptr().add(b * BLOCK);
                let w = unit.add(TILE * 2 + half * 32);
                let dw = _mm256_cvtph_ps(_mm_loadu_si128(unit.add(half * 16) as *const __m128i));
                let d = _mm256_mul_ps(dw, _mm256_set1_ps(*scales.get_unchecked(b)));
                for (g, lane) in acc.iter_mut().enumerate() {
                    let ag =
                        _mm256_set1_epi32(std::ptr::read_unaligned(a.add(g * 4) as *const i32));
                    let q = _mm256_xor_si256(
                        _mm256_loadu_si256(w.add(g * TILE * 4) as *const __m256i),
                        flip,
                    );
                    let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(ag, q));
                    let isum = _mm256_madd_epi16(pairs, ones);
                    *lane = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, *lane);
                }
            }
            let l = acc;
            let sum = _mm256_add_ps(
                _mm256_add_ps(_mm256_add_ps(l[4], l[0]), _mm256_add_ps(l[6], l[2])),
                _mm256_add_ps(_mm256_add_ps(l[5], l[1]), _mm256_add_ps(l[7], l[3])),
            );
            _mm256_storeu_ps(out.as_mut_ptr().add(half * 8), sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }

    /// Random GGUF Q8_0 bytes and the f32 values they stand for.
    fn gguf_matrix(rows: usize, cols: usize, seed: &mut u64) -> (Vec<u8>, Vec<f32>) {
        let mut data = Vec::new();
        let mut values = Vec::new();
        for _ in 0..rows * cols / BLOCK {
            let d = f16::from_f32(0.01 + 0.02 * lcg(seed).abs());
            data.extend(d.to_bits().to_le_bytes());
            for _ in 0..BLOCK {
                let q = (lcg(seed) * 127.0) as i8;
                data.push(q as u8);
                values.push(d.to_f32() * q as f32);
            }
        }
        (data, values)
    }

    #[test]
    fn matmul_matches_the_dequantized_product() {
        let mut seed = 7;
        // 37 rows: two full tiles and a padded one; two activation rows
        let (rows, cols) = (37, 96);
        let (data, w) = gguf_matrix(rows, cols, &mut seed);
        let m = Q8Matrix::from_gguf_bytes(rows, cols, &data).unwrap();
        assert!(Q8Matrix::from_gguf_bytes(rows, cols, &data[1..]).is_none());
        let x: Vec<f32> = (0..2 * cols).map(|_| lcg(&mut seed)).collect();
        let mut q = Q8Vector::default();
        q.quantize(&x, 2);
        let mut out = vec![0.0; 2 * rows];
        m.matmul(&q, &mut out);
        for mi in 0..2 {
            for r in 0..rows {
                let got = out[mi * rows + r];
                let exact: f32 = (0..cols).map(|c| w[r * cols + c] * x[mi * cols + c]).sum();
                // the activation's rounding: at most half a step (its block's scale) per value
                let bound: f32 = (0..cols)
                    .map(|c| w[r * cols + c].abs() * q.scales[mi * cols / BLOCK + c / BLOCK] * 0.5)
                    .sum();
                assert!(
                    (got - exact).abs() <= bound * 1.01,
                    "row {r}: {got} vs {exact}"
                );
            }
        }
        let mut row = vec![0.0; cols];
        m.dequantize_row(21, &mut row);
        assert_eq!(row, w[21 * cols..22 * cols]);
    }

    #[test]
    fn every_kernel_equals_the_scalar_code_to_the_bit() {
        let kernels = Kernel::available();
        assert_eq!(kernels.last(), Some(&Kernel::Scalar));
        assert_eq!(Kernel::detect(), kernels[0]);
        let mut seed = 11;
        // rows not a multiple of 16, one block and many, several activation rows
        for (rows, cols, m) in [
            (16, 32, 1),
            (5, 64, 3),
            (37, 96, 2),
            (70, 576, 4),
            (33, 1536, 1),
        ] {
            let (mut data, _) = gguf_matrix(rows, cols, &mut seed);
            // the extreme bytes: -128 (which `|q|` reads as 128) and 127
            data[2] = 0x80;
            data[3] = 0x7f;
            let w = Q8Matrix::from_gguf_bytes(rows, cols, &data).unwrap();
            let mut x: Vec<f32> = (0..m * cols).map(|_| lcg(&mut seed) * 3.0).collect();
            // a block of zeros, and activation bytes of -127 and 127
            let zeros = 32.min(x.len() - 32);
            x[zeros..][..32].fill(0.0);
            x[0] = -5.0;
            x[1] = 5.0;
            let mut q = Q8Vector::default();
            q.quantize(&x, m);
            let blocks = cols / BLOCK;
            for mi in 0..m {
                for t in 0..rows.div_ceil(TILE) {
                    let mut want = [0f32; TILE];
                    tile_dot_scalar(
                        &w.tiles[t * blocks * TILE_BLOCK_BYTES..][..blocks * TILE_BLOCK_BYTES],
                        &q.quants[mi * blocks * BLOCK..][..blocks * BLOCK],
                        &q.scales[mi * blocks..][..blocks],
                        &q.sums[mi * blocks * GROUPS..][..blocks * GROUPS],
                        &mut want,
                    );
                    for &k in &kernels {
                        let mut got = [0f32; TILE];
                        w.tile_dot(k, t, &q, mi, &mut got);
                        assert_eq!(
                            got.map(f32::to_bits),
                            want.map(f32::to_bits),
                            "{k:?}, {rows}x{cols}, activation row {mi}, tile {t}"
                        );
                    }
                }
            }
            let mut out = vec![0.0; m * rows];
            w.matmul(&q, &mut out);
            for mi in 0..m {
                for t in 0..rows.div_ceil(TILE) {
                    let mut want = [0f32; TILE];
                    w.tile_dot(Kernel::Scalar, t, &q, mi, &mut want);
                    let n = TILE.min(rows - t * TILE);
                    assert_eq!(out[mi * rows + t * TILE..][..n], want[..n]);
                }
            }
        }
    }

    #[test]
    fn quantizing_keeps_each_value_within_half_a_step() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let mut q = Q8Vector::default();
        q.quantize(&x, 1);
        for (i, v) in x.iter().enumerate() {
            let d = q.scales[i / BLOCK];
            assert!((d * q.quants[i] as f32 - v).abs() <= d * 0.51);
        }
        assert_eq!(
            q.sums[0]
                + q.sums[1]
                + q.sums[2]
                + q.sums[3]
                + q.sums[4]
                + q.sums[5]
                + q.sums[6]
                + q.sums[7],
            q.quants[..32].iter().map(|&v| v as i32).sum::<i32>()
        );
    }
}
