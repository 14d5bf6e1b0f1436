//! CPU kernels shared by MTCNN ([`super::mtcnn`]) and the TFLite executor ([`super::tflite`]):
//! a matrix product with a fused epilogue (bias, residual, activation), which carries every
//! convolution of both, and max pooling.
//!
//! The product reads its right operand through [`Rows`], a list of row offsets into one
//! buffer, so a 1x1 convolution reads the NCHW input as it is and a stride-1 unpadded
//! convolution reads shifted views of it without building an im2col matrix
//! ([`valid_conv_offsets`]). Large products are split by columns over rayon's threads.

use std::ops::Range;

use rayon::prelude::*;

/// Output columns per register tile (two AVX vectors of f32).
const NR: usize = 16;
/// Output rows per register tile.
const MR: usize = 4;
/// Multiply-adds per parallel task below which a product stays on one thread.
const MIN_TASK_WORK: usize = 1 << 17;

/// A read-only matrix whose row `r` starts at `data[offsets[r]]`; columns are contiguous.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub offsets: &'a [usize],
}

impl<'a> Rows<'a> {
    /// The `n` columns from `start` of row `r`.
    #[inline]
    fn row(&self, r: usize, start: usize, n: usize) -> &'a [f32] {
        &self.data[self.offsets[r] + start..][..n]
    }
}

/// The activation at the end of an [`Epilogue`].
#[derive(Clone, Copy)]
pub enum Activation<'a> {
    None,
    Relu,
    /// `min(max(v, 0), 6)`.
    Relu6,
    /// `v` for `v >= 0`, else `slope[row] * v`.
    PRelu(&'a [f32]),
}

impl Activation<'_> {
    /// Applies the activation of output row `row` to `values`.
    #[inline(always)]
    pub fn apply(&self, row: usize, values: &mut [f32]) {
        match self {
            Activation::None => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
            Activation::PRelu(slopes) => {
                let a = slopes[row];
                values
                    .iter_mut()
                    .for_each(|v| *v = if *v < 0.0 { a * *v } else { *v });
            }
        }
    }

    /// [`Activation::apply`] on one register tile row.
    #[inline(always)]
    fn apply_tile(&self, row: usize, v: &mut [f32; NR]) {
        match self {
            Activation::None => {}
            Activation::Relu => v.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Relu6 => v.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
            Activation::PRelu(slopes) => {
                // max(v, 0) + a * min(v, 0) is v for v >= 0 and a * v below: branch-free.
                let a = slopes[row];
                v.iter_mut().for_each(|v| *v = v.max(0.0) + a * v.min(0.0));
            }
        }
    }
}

/// What a product row `i` goes through before it is stored:
/// `act(bias[i] + product + residual[i])`.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    /// One value per output row.
    pub bias: Option<&'a [f32]>,
    /// One row per output row, read at the output's column indices.
    pub residual: Option<Rows<'a>>,
    pub act: Activation<'a>,
}

/// Whether this CPU has AVX2 and FMA, detected once: the kernels then run as code compiled
/// for them, with fused multiply-adds ([`fmadd`]); elsewhere as plain code.
pub fn fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `a * b + c`: one fused instruction (one rounding) in the code for CPUs with FMA
/// (`FMA = true`, only reached where [`fma`] holds), two roundings otherwise.
#[inline(always)]
pub fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The left operand of [`matmul`], `[m, k]`, with each block of rows that a register tile
/// takes together (`MR` rows, then single rows) stored `[k, rows]`, so that one load position
/// serves all its rows. Block `i..i + r` keeps the span `i * k..(i + r) * k`.
#[derive(Debug, Clone)]
pub struct Packed {
    data: Vec<f32>,
    m: usize,
    k: usize,
}

impl Packed {
    /// Packs the row-major `[m, k]` matrix `w`.
    pub fn new(w: &[f32], m: usize, k: usize) -> Self {
        assert_eq!(w.len(), m * k, "packing a weight that is not [m, k]");
        let mut data = Vec::with_capacity(w.len());
        let mut i = 0;
        while i < m {
            let r = if i + MR <= m { MR } else { 1 };
            for kk in 0..k {
                data.extend((i..i + r).map(|row| w[row * k + kk]));
            }
            i += r;
        }
        Packed { data, m, k }
    }

    /// Rows of the product.
    pub fn rows(&self) -> usize {
        self.m
    }
}

/// `out[i * out_stride + j] = epilogue_i(Σ_k w[i][k] * x[k][j])` for `i < m`, `j < n`: `w` is
/// `[m, k]` and `x` has `k` rows of at least `n` columns. Columns are split over rayon's
/// threads when the product is large.
pub fn matmul(w: &Packed, x: Rows, n: usize, ep: &Epilogue, out: &mut [f32], out_stride: usize) {
    let (m, k_len) = (w.m, w.k);
    assert_eq!(x.offsets.len(), k_len, "matmul: x does not have k rows");
    assert!(m == 0 || out.len() >= (m - 1) * out_stride + n && out_stride >= n);
    if m == 0 || n == 0 {
        return;
    }
    let w = &w.data;
    let tiles = n.div_ceil(NR);
    let tasks = (m * k_len * n / MIN_TASK_WORK)
        .clamp(1, 4 * rayon::current_num_threads())
        .min(tiles);
    if tasks == 1 {
        let mut rows: Vec<&mut [f32]> = out.chunks_mut(out_stride).take(m).collect();
        matmul_columns(w, x, 0..n, ep, &mut rows);
        return;
    }
    // Task t owns columns bounds[t]..bounds[t + 1] (whole tiles) of every output row.
    let bounds: Vec<usize> = (0..=tasks)
        .map(|t| (tiles * t / tasks * NR).min(n))
        .collect();
    let mut parts: Vec<Vec<&mut [f32]>> = (0..tasks).map(|_| Vec::with_capacity(m)).collect();
    for row in out.chunks_mut(out_stride).take(m) {
        let mut rest = &mut row[..n];
        for (t, part) in parts.iter_mut().enumerate() {
            let (head, tail) = rest.split_at_mut(bounds[t + 1] - bounds[t]);
            part.push(head);
            rest = tail;
        }
    }
    parts
        .into_par_iter()
        .enumerate()
        .for_each(|(t, mut rows)| matmul_columns(w, x, bounds[t]..bounds[t + 1], ep, &mut rows));
}

/// Columns `cols` of the product for every output row; `out[i]` holds row `i`'s columns
/// `cols` (so `out[i][0]` is column `cols.start`). `w` is [`Packed::data`].
fn matmul_columns(w: &[f32], x: Rows, cols: Range<usize>, ep: &Epilogue, out: &mut [&mut [f32]]) {
    #[cfg(target_arch = "x86_64")]
    if fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { matmul_columns_fma(w, x, cols, ep, out) };
        return;
    }
    matmul_columns_with::<false>(w, x, cols, ep, out)
}

/// [`matmul_columns`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_columns_fma(
    w: &[f32],
    x: Rows,
    cols: Range<usize>,
    ep: &Epilogue,
    out: &mut [&mut [f32]],
) {
    matmul_columns_with::<true>(w, x, cols, ep, out)
}

#[inline(always)]
fn matmul_columns_with<const FMA: bool>(
    w: &[f32],
    x: Rows,
    cols: Range<usize>,
    ep: &Epilogue,
    out: &mut [&mut [f32]],
) {
    let k_len = x.offsets.len();
    let mut j = cols.start;
    while j + NR <= cols.end {
        column_tile::<FMA>(w, x, j, j, NR, ep, out, j - cols.start);
        j += NR;
    }
    if j < cols.end {
        // The last, partial tile: its columns copied into a zero-padded [k_len, NR] buffer.
        let width = cols.end - j;
        let mut buf = vec![0f32; k_len * NR];
        for (k, dst) in buf.chunks_exact_mut(NR).enumerate() {
            dst[..width].copy_from_slice(x.row(k, j, width));
        }
        let offsets: Vec<usize> = (0..k_len).map(|k| k * NR).collect();
        let padded = Rows {
            data: &buf,
            offsets: &offsets,
        };
        column_tile::<FMA>(w, padded, 0, j, width, ep, out, j - cols.start);
    }
}

/// One tile of `NR` columns for every output row: reads `x` at columns `x_col..x_col + NR`,
/// stores the first `width` results at `out[i][out_col..]`; `col` is the tile's column in the
/// whole product (where the residual is read).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn column_tile<const FMA: bool>(
    w: &[f32],
    x: Rows,
    x_col: usize,
    col: usize,
    width: usize,
    ep: &Epilogue,
    out: &mut [&mut [f32]],
    out_col: usize,
) {
    let (m, k_len) = (out.len(), x.offsets.len());
    let mut i = 0;
    while i + MR <= m {
        let w_block = &w[i * k_len..(i + MR) * k_len];
        let acc = row_tile::<MR, FMA>(w_block, x, x_col, ep.bias.map(|b| &b[i..i + MR]));
        store_tile(acc, i, col, width, ep, out, out_col);
        i += MR;
    }
    while i < m {
        let w_row = &w[i * k_len..(i + 1) * k_len];
        let acc = row_tile::<1, FMA>(w_row, x, x_col, ep.bias.map(|b| &b[i..i + 1]));
        store_tile(acc, i, col, width, ep, out, out_col);
        i += 1;
    }
}

/// `acc[r][l] = bias[r] + Σ_k w[k][r] * x[k][x_col + l]`, `R` rows by `NR` columns in
/// registers; `w` is one packed block `[k_len, R]`.
#[inline(always)]
fn row_tile<const R: usize, const FMA: bool>(
    w: &[f32],
    x: Rows,
    x_col: usize,
    bias: Option<&[f32]>,
) -> [[f32; NR]; R] {
    let mut acc = [[0f32; NR]; R];
    if let Some(b) = bias {
        for (a, &b) in acc.iter_mut().zip(b) {
            *a = [b; NR];
        }
    }
    for (&off, wk) in x.offsets.iter().zip(w.chunks_exact(R)) {
        let xs: &[f32; NR] = x.data[off + x_col..][..NR].try_into().unwrap();
        for r in 0..R {
            for l in 0..NR {
                acc[r][l] = fmadd::<FMA>(wk[r], xs[l], acc[r][l]);
            }
        }
    }
    acc
}

/// Adds the residual, applies the activation and stores the first `width` columns of the
/// rows `i..i + R` of a tile.
#[inline(always)]
fn store_tile<const R: usize>(
    mut acc: [[f32; NR]; R],
    i: usize,
    col: usize,
    width: usize,
    ep: &Epilogue,
    out: &mut [&mut [f32]],
    out_col: usize,
) {
    for (r, v) in acc.iter_mut().enumerate() {
        if width == NR {
            // A whole tile: fixed-length loops the compiler vectorises.
            if let Some(res) = ep.residual {
                let res: &[f32; NR] = res.row(i + r, col, NR).try_into().unwrap();
                *v = std::array::from_fn(|l| v[l] + res[l]);
            }
            ep.act.apply_tile(i + r, v);
            out[i + r][out_col..out_col + NR].copy_from_slice(v);
        } else {
            let v = &mut v[..width];
            if let Some(res) = ep.residual {
                for (v, r) in v.iter_mut().zip(res.row(i + r, col, width)) {
                    *v += r;
                }
            }
            ep.act.apply(i + r, v);
            out[i + r][out_col..out_col + width].copy_from_slice(v);
        }
    }
}

/// Row offsets that make [`matmul`] a stride-1, unpadded `k x k` convolution of one
/// `[c, h, w]` image: row `(ci, ky, kx)` (the order of a flattened OIHW kernel) starts at
/// input pixel `(ci, ky, kx)`. Product column `j = oy * w + ox` is then output pixel
/// `(oy, ox)` for `ox < w - k + 1`; the other columns of each row are junk. Use
/// `n = (h - k) * w + (w - k + 1)` columns, which ends at the last output pixel and reads
/// nothing past the image.
pub fn valid_conv_offsets(c: usize, h: usize, w: usize, k: usize) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(c * k * k);
    for ci in 0..c {
        for ky in 0..k {
            for kx in 0..k {
                offsets.push(ci * h * w + ky * w + kx);
            }
        }
    }
    offsets
}

/// Max pooling of `[planes, h, w]` (contiguous planes) with a `k x k` window and stride `s`
/// into `[planes, oh, ow]`. Windows are clipped to the input, so `oh`/`ow` may count partial
/// windows at the end (ceil mode) as long as each starts inside the input.
pub fn max_pool(
    x: &[f32],
    planes: usize,
    (h, w): (usize, usize),
    (k, s): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    assert_eq!(x.len(), planes * h * w);
    assert!(oh > 0 && ow > 0 && (oh - 1) * s < h && (ow - 1) * s < w);
    let mut out = Vec::with_capacity(planes * oh * ow);
    let mut rowmax = vec![0f32; w];
    for src in x.chunks_exact(h * w) {
        for oy in 0..oh {
            // Column maxima over the window's rows, then maxima over each window's columns.
            let y0 = oy * s;
            rowmax.copy_from_slice(&src[y0 * w..][..w]);
            for y in y0 + 1..(y0 + k).min(h) {
                for (m, &v) in rowmax.iter_mut().zip(&src[y * w..][..w]) {
                    *m = m.max(v);
                }
            }
            out.extend((0..ow).map(|ox| {
                let x0 = ox * s;
                rowmax[x0..(x0 + k).min(w)]
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16;
                (v % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The plain triple loop the kernel must agree with.
    fn reference(w: &[f32], m: usize, x: Rows, n: usize, ep: &Epilogue) -> Vec<f32> {
        let k_len = x.offsets.len();
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut v = ep.bias.map_or(0.0, |b| b[i]);
                for k in 0..k_len {
                    v += w[i * k_len + k] * x.data[x.offsets[k] + j];
                }
                if let Some(r) = ep.residual {
                    v += r.data[r.offsets[i] + j];
                }
                ep.act.apply(i, std::slice::from_mut(&mut v));
                out[i * n + j] = v;
            }
        }
        out
    }

    #[test]
    fn matmul_matches_the_triple_loop() {
        // Shapes with partial row and column tiles, one large enough to run in parallel.
        for (m, k_len, n) in [(1, 1, 1), (6, 27, 37), (10, 3, 16), (16, 128, 1500)] {
            let w = values(m * k_len, 1);
            let x = values(k_len * (n + 3), 2);
            let offsets: Vec<usize> = (0..k_len).map(|k| k * (n + 3) + 1).collect();
            let rows = Rows {
                data: &x,
                offsets: &offsets,
            };
            let bias = values(m, 3);
            let res = values(m * n, 4);
            let res_offsets: Vec<usize> = (0..m).map(|i| i * n).collect();
            let slopes = values(m, 5);
            let ep = Epilogue {
                bias: Some(&bias),
                residual: Some(Rows {
                    data: &res,
                    offsets: &res_offsets,
                }),
                act: Activation::PRelu(&slopes),
            };
            let want = reference(&w, m, rows, n, &ep);
            let mut got = vec![f32::NAN; m * (n + 2)];
            matmul(&Packed::new(&w, m, k_len), rows, n, &ep, &mut got, n + 2);
            for i in 0..m {
                for j in 0..n {
                    let (g, r) = (got[i * (n + 2) + j], want[i * n + j]);
                    assert!(
                        (g - r).abs() < 1e-4,
                        "{m}x{k_len}x{n} at ({i}, {j}): {g} vs {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn offsets_make_a_valid_convolution() {
        // One output channel summing a 2x2 window of channel 1 of a [2, 3, 4] image.
        let img: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let (c, h, w, k) = (2, 3, 4, 2);
        let offsets = valid_conv_offsets(c, h, w, k);
        let weight = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let n = (h - k) * w + (w - k + 1);
        let mut out = vec![0f32; n];
        let rows = Rows {
            data: &img,
            offsets: &offsets,
        };
        let ep = Epilogue {
            bias: None,
            residual: None,
            act: Activation::None,
        };
        matmul(&Packed::new(&weight, 1, 8), rows, n, &ep, &mut out, n);
        // Output (1, 2): pixels 12 + (1, 2), (1, 3), (2, 2), (2, 3) = 18 + 19 + 22 + 23.
        assert_eq!(out[w + 2], 82.0);
        assert_eq!(out[0], 12.0 + 13.0 + 16.0 + 17.0);
    }

    #[test]
    fn max_pool_clips_the_last_windows() {
        // 3x5, kernel 2, stride 2, ceil mode: 2 x 3 windows, the last row and column partial.
        let x: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let out = max_pool(&x, 1, (3, 5), (2, 2), (2, 3));
        assert_eq!(out, vec![6.0, 8.0, 9.0, 11.0, 13.0, 14.0]);
    }
}
