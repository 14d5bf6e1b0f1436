//! The executor's CPU kernels on contiguous NCHW f32: CONV_2D as one [`kernels::matmul`] per
//! image and DEPTHWISE_CONV_2D as a direct loop, both applying the op's epilogue (bias,
//! fused ADD residual, activation) as they store.

use rayon::prelude::*;

use super::Pad4;
use crate::face::kernels::{self, fmadd, Epilogue, Packed, Rows};

/// Output length of a padded, strided convolution along one axis.
fn out_len(input: usize, k: usize, stride: usize, pad: [usize; 2]) -> usize {
    (input + pad[0] + pad[1] - k) / stride + 1
}

/// Output `(h, w)` of a convolution with kernel `k`, `stride` and padding `[t, b, l, r]`.
fn out_size((h, w): (usize, usize), k: (usize, usize), stride: usize, pad: Pad4) -> (usize, usize) {
    let [t, b, l, r] = pad;
    (
        out_len(h, k.0, stride, [t, b]),
        out_len(w, k.1, stride, [l, r]),
    )
}

/// CONV_2D: `weight` `[o, i * kh * kw]` (flattened OIHW).
#[derive(Debug, Clone)]
pub(crate) struct ConvCpu {
    pub weight: Packed,
    pub k: (usize, usize),
    pub stride: usize,
    pub pad: Pad4,
}

impl ConvCpu {
    /// Whether the input is read as it is: a 1x1, stride-1, unpadded kernel.
    fn pointwise(&self) -> bool {
        self.k == (1, 1) && self.stride == 1 && self.pad == [0; 4]
    }

    pub fn out_size(&self, hw: (usize, usize)) -> (usize, usize) {
        out_size(hw, self.k, self.stride, self.pad)
    }

    /// `x` `[b, i, h, w]` -> `[b, o, oh, ow]`; `residual` (`[b, o, oh, ow]`, a fused ADD's
    /// other operand) and `ep`'s bias and activation are applied as results are stored.
    pub fn run(
        &self,
        x: &[f32],
        (b, c, h, w): (usize, usize, usize, usize),
        residual: Option<&[f32]>,
        ep: Epilogue,
    ) -> Vec<f32> {
        let (oh, ow) = self.out_size((h, w));
        let (o, n) = (self.weight.rows(), oh * ow);
        let mut y = vec![0f32; b * o * n];
        let res_offsets: Vec<usize> = (0..o).map(|i| i * n).collect();
        for (bi, out) in y.chunks_exact_mut(o * n).enumerate() {
            let image = &x[bi * c * h * w..][..c * h * w];
            let ep = Epilogue {
                residual: residual.map(|r| Rows {
                    data: &r[bi * o * n..][..o * n],
                    offsets: &res_offsets,
                }),
                ..ep
            };
            if self.pointwise() {
                // [o, i] x [i, h * w]: the image's channel planes are the rows.
                let offsets: Vec<usize> = (0..c).map(|ci| ci * h * w).collect();
                let rows = Rows {
                    data: image,
                    offsets: &offsets,
                };
                kernels::matmul(&self.weight, rows, n, &ep, out, n);
            } else {
                // [o, i * kh * kw] x [i * kh * kw, oh * ow].
                let cols = im2col(image, (c, h, w), self.k, self.stride, self.pad);
                let offsets: Vec<usize> = (0..cols.len() / n).map(|r| r * n).collect();
                let rows = Rows {
                    data: &cols,
                    offsets: &offsets,
                };
                kernels::matmul(&self.weight, rows, n, &ep, out, n);
            }
        }
        y
    }
}

/// The output columns `lo..hi` whose input column `ox * s + kx - l` lies inside `0..w`, of
/// `ow` output columns.
fn inside(kx: usize, l: usize, s: usize, w: usize, ow: usize) -> (usize, usize) {
    if w + l < kx + 1 {
        return (0, 0);
    }
    let lo = l.saturating_sub(kx).div_ceil(s);
    let hi = ((w + l - kx - 1) / s + 1).min(ow);
    (lo, hi.max(lo))
}

/// `dst[j] = src[j * s]`; stride 2 (the strided convolutions here) gets a loop the compiler
/// vectorises.
fn strided_copy(dst: &mut [f32], src: &[f32], s: usize) {
    if s == 2 {
        for (d, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
            *d = pair[0];
        }
        // chunks_exact skips a last lone element.
        if let Some(last) = dst.get_mut(src.len() / 2).filter(|_| src.len() % 2 == 1) {
            *last = src[src.len() - 1];
        }
    } else {
        for (d, v) in dst.iter_mut().zip(src.chunks(s)) {
            *d = v[0];
        }
    }
}

/// Patches of one contiguous `[c, h, w]` image for a convolution: `[c * kh * kw, oh * ow]`,
/// rows ordered like the flattened OIHW kernel (`c`, then `ky`, then `kx`); zero outside the
/// input.
pub(super) fn im2col(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    (kh, kw): (usize, usize),
    s: usize,
    pad: Pad4,
) -> Vec<f32> {
    let [t, b, l, r] = pad;
    let (oh, ow) = (out_len(h, kh, s, [t, b]), out_len(w, kw, s, [l, r]));
    let mut y = vec![0f32; c * kh * kw * oh * ow];
    let min_rows = (1 << 15) / (oh * ow).max(1);
    y.par_chunks_mut(oh * ow)
        .with_min_len(min_rows.max(1))
        .enumerate()
        .for_each(|(row, out)| {
            let (ci, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
            let img = &x[ci * h * w..(ci + 1) * h * w];
            let (lo, hi) = inside(kx, l, s, w, ow);
            if lo == hi {
                return;
            }
            for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
                let Some(iy) = (oy * s + ky).checked_sub(t).filter(|&iy| iy < h) else {
                    continue;
                };
                // Output columns lo..hi read input columns (lo * s + kx - l).. step s.
                let src = &img[iy * w + lo * s + kx - l..(iy + 1) * w];
                if s == 1 {
                    out[lo..hi].copy_from_slice(&src[..hi - lo]);
                } else {
                    strided_copy(&mut out[lo..hi], src, s);
                }
            }
        });
    y
}

/// DEPTHWISE_CONV_2D with multiplier 1: `weight` `[c, kh, kw]`. candle's grouped convolution
/// runs one small convolution per channel, far slower for 3x3 kernels.
#[derive(Debug, Clone)]
pub(crate) struct DepthwiseCpu {
    pub weight: Vec<f32>,
    pub k: (usize, usize),
    pub stride: usize,
    pub pad: Pad4,
}

impl DepthwiseCpu {
    pub fn out_size(&self, hw: (usize, usize)) -> (usize, usize) {
        out_size(hw, self.k, self.stride, self.pad)
    }

    /// `x` `[b, c, h, w]` -> `[b, c, oh, ow]`, with `ep` (no residual) applied; channel planes
    /// are spread over rayon's threads.
    pub fn run(
        &self,
        x: &[f32],
        (_, c, h, w): (usize, usize, usize, usize),
        ep: Epilogue,
    ) -> Vec<f32> {
        let (oh, ow) = self.out_size((h, w));
        let mut y = vec![0f32; x.len() / (h * w) * oh * ow];
        let plane_work = oh * ow * self.k.0 * self.k.1;
        let min_planes = (1 << 16) / plane_work.max(1);
        y.par_chunks_mut(oh * ow)
            .zip(x.par_chunks(h * w))
            .with_min_len(min_planes.max(1))
            .enumerate()
            .for_each(|(n, (out, img))| {
                let ch = n % c;
                out.fill(ep.bias.map_or(0.0, |b| b[ch]));
                self.plane(img, (h, w), ch, out, ow);
                ep.act.apply(ch, out);
            });
        y
    }

    /// Adds channel `ch`'s convolution of `img` `[h, w]` to `out` `[oh, ow]`.
    fn plane(&self, img: &[f32], hw: (usize, usize), ch: usize, out: &mut [f32], ow: usize) {
        #[cfg(target_arch = "x86_64")]
        if kernels::fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { self.plane_fma(img, hw, ch, out, ow) };
            return;
        }
        self.plane_with::<false>(img, hw, ch, out, ow)
    }

    /// [`DepthwiseCpu::plane`] compiled for AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn plane_fma(
        &self,
        img: &[f32],
        hw: (usize, usize),
        ch: usize,
        out: &mut [f32],
        ow: usize,
    ) {
        self.plane_with::<true>(img, hw, ch, out, ow)
    }

    #[inline(always)]
    fn plane_with<const FMA: bool>(
        &self,
        img: &[f32],
        (h, w): (usize, usize),
        ch: usize,
        out: &mut [f32],
        ow: usize,
    ) {
        if self.stride == 1 {
            self.plane_stride1::<FMA>(img, (h, w), ch, out, ow);
            return;
        }
        let ((kh, kw), s, [t, _, l, _]) = (self.k, self.stride, self.pad);
        let k = &self.weight[ch * kh * kw..(ch + 1) * kh * kw];
        // For each kx: the output columns whose input column lies inside the row.
        let cols: Vec<(usize, usize)> = (0..kw).map(|kx| inside(kx, l, s, w, ow)).collect();
        for (oy, row) in out.chunks_exact_mut(ow).enumerate() {
            for ky in 0..kh {
                let Some(iy) = (oy * s + ky).checked_sub(t).filter(|&iy| iy < h) else {
                    continue;
                };
                let src = &img[iy * w..(iy + 1) * w];
                for (kx, &(lo, hi)) in cols.iter().enumerate() {
                    if lo < hi {
                        // Output columns lo..hi read input columns (lo * s + kx - l).. step s.
                        let wk = k[ky * kw + kx];
                        let src = &src[lo * s + kx - l..];
                        for (o, v) in row[lo..hi].iter_mut().zip(src.chunks(s)) {
                            *o = fmadd::<FMA>(wk, v[0], *o);
                        }
                    }
                }
            }
        }
    }

    /// [`DepthwiseCpu::plane`] for stride 1: on a zero-padded copy of the plane, blocks of
    /// output columns accumulate every tap in registers.
    #[inline(always)]
    fn plane_stride1<const FMA: bool>(
        &self,
        img: &[f32],
        (h, w): (usize, usize),
        ch: usize,
        out: &mut [f32],
        ow: usize,
    ) {
        let ((kh, kw), [t, b, l, r]) = (self.k, self.pad);
        let k = &self.weight[ch * kh * kw..(ch + 1) * kh * kw];
        let pw = w + l + r;
        let mut padded = vec![0f32; (h + t + b) * pw];
        for (dst, src) in padded[t * pw..]
            .chunks_exact_mut(pw)
            .zip(img.chunks_exact(w))
        {
            dst[l..l + w].copy_from_slice(src);
        }
        for (oy, row) in out.chunks_exact_mut(ow).enumerate() {
            let window = &padded[oy * pw..(oy + kh) * pw];
            let mut x0 = 0;
            // Four vectors of independent sums hide the multiply-add latency; then one.
            while x0 + 32 <= ow {
                taps_tile::<32, FMA>(k, window, pw, row, x0);
                x0 += 32;
            }
            while x0 + 8 <= ow {
                taps_tile::<8, FMA>(k, window, pw, row, x0);
                x0 += 8;
            }
            for (ox, o) in row.iter_mut().enumerate().skip(x0) {
                for (taps, src) in k.chunks_exact(kw).zip(window.chunks_exact(pw)) {
                    for (kx, &wk) in taps.iter().enumerate() {
                        *o = fmadd::<FMA>(wk, src[ox + kx], *o);
                    }
                }
            }
        }
    }
}

/// Adds the taps `k` `[kh, kw]` over `window` (`kh` padded rows of `pw`) to the output
/// columns `x0..x0 + N` of `row`, in registers.
#[inline(always)]
fn taps_tile<const N: usize, const FMA: bool>(
    k: &[f32],
    window: &[f32],
    pw: usize,
    row: &mut [f32],
    x0: usize,
) {
    let kw = k.len() * pw / window.len();
    let mut acc: [f32; N] = row[x0..x0 + N].try_into().unwrap();
    for (taps, src) in k.chunks_exact(kw).zip(window.chunks_exact(pw)) {
        for (kx, &wk) in taps.iter().enumerate() {
            let xs: &[f32; N] = src[x0 + kx..][..N].try_into().unwrap();
            for lane in 0..N {
                acc[lane] = fmadd::<FMA>(wk, xs[lane], acc[lane]);
            }
        }
    }
    row[x0..x0 + N].copy_from_slice(&acc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::kernels::Activation;
    use candle_core::{Device, Tensor};

    #[test]
    fn conv_matches_candle_conv() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (k, stride, pad) in [
            (3, 2, [0, 1, 0, 1]),
            (2, 2, [0, 0, 0, 0]),
            (3, 1, [1, 1, 1, 1]),
            (1, 1, [0, 0, 0, 0]),
        ] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &dev)?;
            let wt = Tensor::randn(0f32, 1.0, (4, 3, k, k), &dev)?;
            let bias = Tensor::new(&[0.5f32, -1.0, 2.0, 0.0], &dev)?;
            let conv = ConvCpu {
                weight: Packed::new(&wt.flatten_all()?.to_vec1()?, 4, 3 * k * k),
                k: (k, k),
                stride,
                pad,
            };
            let xp = x
                .pad_with_zeros(2, pad[0], pad[1])?
                .pad_with_zeros(3, pad[2], pad[3])?;
            let want = xp
                .conv2d(&wt, 0, stride, 1, 1)?
                .broadcast_add(&bias.reshape((1, 4, 1, 1))?)?;
            // The residual is the expected result itself: the kernel must return it doubled.
            let residual = want.flatten_all()?.to_vec1::<f32>()?;
            let got = conv.run(
                &x.flatten_all()?.to_vec1()?,
                (2, 3, 8, 8),
                Some(&residual),
                Epilogue {
                    bias: Some(&bias.to_vec1()?),
                    residual: None,
                    act: Activation::None,
                },
            );
            let got = Tensor::from_vec(got, want.shape(), &dev)?;
            let err = (got - (want * 2.0)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(err < 1e-4, "k {k} stride {stride}: {err}");
        }
        Ok(())
    }

    #[test]
    fn depthwise_kernel_matches_grouped_conv() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (stride, pad) in [(1, [1, 1, 1, 1]), (2, [0, 1, 0, 1]), (1, [0, 0, 0, 0])] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, 7, 6), &dev)?;
            let wt = Tensor::randn(0f32, 1.0, (3, 1, 3, 3), &dev)?;
            let bias = Tensor::new(&[0.5f32, -1.0, 2.0], &dev)?;
            let op = DepthwiseCpu {
                weight: wt.flatten_all()?.to_vec1()?,
                k: (3, 3),
                stride,
                pad,
            };
            let xp = x
                .pad_with_zeros(2, pad[0], pad[1])?
                .pad_with_zeros(3, pad[2], pad[3])?;
            let want = xp
                .conv2d(&wt, 0, stride, 1, 3)?
                .broadcast_add(&bias.reshape((1, 3, 1, 1))?)?
                .relu()?;
            let got = op.run(
                &x.flatten_all()?.to_vec1()?,
                (2, 3, 7, 6),
                Epilogue {
                    bias: Some(&bias.to_vec1()?),
                    residual: None,
                    act: Activation::Relu,
                },
            );
            let got = Tensor::from_vec(got, want.shape(), &dev)?;
            let err = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(err < 1e-4, "stride {stride} pad {pad:?}: {err}");
        }
        Ok(())
    }
}
