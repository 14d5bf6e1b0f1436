//! Layers the three MTCNN networks share: a stride-1 convolution, PReLU, ceil-mode max
//! pooling and the Caffe-order flatten before the first dense layer.

use candle_core::{
    CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Storage, Tensor, D,
};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};
use rayon::prelude::*;

use crate::face::kernels::{self, Activation, Epilogue, Packed, Rows};

/// A square, stride-1, unpadded convolution with bias (every MTCNN convolution).
///
/// On the CPU it is one [`kernels::matmul`] per image that reads shifted views of the input
/// (no im2col matrix) and applies the bias, and optionally the following PReLU, before it
/// stores; elsewhere it is candle's `conv2d`.
#[derive(Debug, Clone)]
pub struct Conv {
    conv: Conv2d,
    /// [c_out, c_in * k * k], for the CPU kernel.
    weight: Packed,
    bias: Vec<f32>,
    c_in: usize,
    k: usize,
}

impl Conv {
    pub fn new(c_in: usize, c_out: usize, k: usize, vb: VarBuilder) -> Result<Self> {
        let conv = candle_nn::conv2d(c_in, c_out, k, Conv2dConfig::default(), vb)?;
        let flat = conv.weight().to_dtype(DType::F32)?.flatten_all()?;
        let weight = Packed::new(&flat.to_vec1()?, c_out, c_in * k * k);
        let bias = match conv.bias() {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; c_out],
        };
        Ok(Conv {
            conv,
            weight,
            bias,
            c_in,
            k,
        })
    }

    /// The convolution followed by `prelu`: [b, c_in, h, w] -> [b, c_out, h - k + 1, w - k + 1].
    /// On the CPU the PReLU is applied as the results are stored.
    pub fn forward_prelu(&self, xs: &Tensor, prelu: &PRelu) -> Result<Tensor> {
        if self.runs_on_cpu(xs) {
            self.forward_cpu(xs, Activation::PRelu(&prelu.slopes))
        } else {
            prelu.forward(&self.conv.forward(xs)?)
        }
    }

    fn runs_on_cpu(&self, xs: &Tensor) -> bool {
        xs.device().is_cpu() && xs.dtype() == DType::F32
    }

    /// [b, c_in, h, w] -> [b, c_out, h - k + 1, w - k + 1], then `act`.
    fn forward_cpu(&self, xs: &Tensor, act: Activation) -> Result<Tensor> {
        let (b, c_in, h, w) = xs.dims4()?;
        if c_in != self.c_in || h < self.k || w < self.k {
            candle_core::bail!(
                "conv: input {:?} does not fit {} channels, kernel {}",
                xs.dims(),
                self.c_in,
                self.k
            );
        }
        let (oh, ow) = (h - self.k + 1, w - self.k + 1);
        let c_out = self.bias.len();
        let xs = xs.contiguous()?;
        let (storage, layout) = xs.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            candle_core::bail!("conv: expected an f32 CPU tensor");
        };
        let src = &data[layout.start_offset()..][..b * c_in * h * w];
        let image_len = c_in * h * w;
        let out = if b == 1 {
            self.conv_image(src, (h, w), act)
        } else {
            let images: Vec<Vec<f32>> = src
                .par_chunks(image_len)
                .map(|img| self.conv_image(img, (h, w), act))
                .collect();
            images.concat()
        };
        drop(storage);
        Tensor::from_vec(out, (b, c_out, oh, ow), xs.device())
    }

    /// One image: `src` [c_in, h, w] -> [c_out, oh, ow] with bias and `act`.
    fn conv_image(&self, src: &[f32], (h, w): (usize, usize), act: Activation) -> Vec<f32> {
        let k = self.k;
        let (oh, ow) = (h - k + 1, w - k + 1);
        let c_out = self.bias.len();
        let offsets = kernels::valid_conv_offsets(self.c_in, h, w, k);
        let x = Rows {
            data: src,
            offsets: &offsets,
        };
        let ep = Epilogue {
            bias: Some(&self.bias),
            residual: None,
            act,
        };
        // Product rows are `w` wide ([c_out, oh, w]); the last k - 1 columns are junk
        // (none for k = 1).
        let n = (oh - 1) * w + ow;
        let mut wide = vec![0f32; c_out * oh * w];
        kernels::matmul(&self.weight, x, n, &ep, &mut wide, oh * w);
        if k == 1 {
            return wide;
        }
        let mut out = Vec::with_capacity(c_out * oh * ow);
        for row in wide.chunks_exact(w) {
            out.extend_from_slice(&row[..ow]);
        }
        out
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.runs_on_cpu(xs) {
            self.forward_cpu(xs, Activation::None)
        } else {
            self.conv.forward(xs)
        }
    }
}

/// PReLU with one slope per channel (dim 1): `y = x` for `x > 0`, else `slope[c] * x`.
///
/// On the CPU this is one pass over the data; elsewhere it falls back to candle ops.
#[derive(Debug, Clone)]
pub struct PRelu {
    /// [c]
    weight: Tensor,
    slopes: Vec<f32>,
}

impl PRelu {
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get(channels, "weight")?.to_dtype(DType::F32)?;
        let slopes = weight.to_vec1::<f32>()?;
        Ok(PRelu { weight, slopes })
    }
}

impl Module for PRelu {
    /// [b, c, ...] -> [b, c, ...]
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if xs.device().is_cpu() && xs.dtype() == DType::F32 {
            return xs.apply_op1_no_bwd(self);
        }
        let mut shape = vec![1; xs.rank()];
        shape[1] = self.slopes.len();
        let w = self.weight.reshape(shape)?;
        let zeros = xs.zeros_like()?;
        xs.maximum(&zeros)? + xs.minimum(&zeros)?.broadcast_mul(&w)?
    }
}

impl CustomOp1 for PRelu {
    fn name(&self) -> &'static str {
        "mtcnn-prelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("mtcnn-prelu: expected f32 input");
        };
        let dims = layout.shape().dims();
        if dims.len() < 2 || dims[1] != self.slopes.len() {
            candle_core::bail!(
                "mtcnn-prelu: input {:?} does not have {} channels",
                dims,
                self.slopes.len()
            );
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("mtcnn-prelu: input must be contiguous");
        };
        let src = &data[start..end];
        let inner: usize = dims[2..].iter().product();
        let mut out = Vec::with_capacity(src.len());
        for plane in src.chunks_exact(inner * self.slopes.len()) {
            for (chan, &slope) in plane.chunks_exact(inner).zip(&self.slopes) {
                out.extend(chan.iter().map(|&v| if v > 0.0 { v } else { v * slope }));
            }
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Max pooling with PyTorch's `ceil_mode=True` and no padding: a partial last window along
/// each axis is kept as long as it starts inside the input.
///
/// [b, c, h, w] -> [b, c, oh, ow] with `oh = ceil((h - k) / s) + 1` (likewise `ow`).
pub fn max_pool_ceil(xs: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let pool = MaxPoolCeil { kernel, stride };
    if xs.device().is_cpu() && xs.dtype() == DType::F32 {
        return xs.apply_op1_no_bwd(&pool);
    }
    // Elsewhere: pad the right and bottom with -inf up to the last window's end.
    let (b, c, h, w) = xs.dims4()?;
    let (oh, ow) = (pool.out_len(h), pool.out_len(w));
    let (ph, pw) = ((oh - 1) * stride + kernel, (ow - 1) * stride + kernel);
    let mut xs = xs.clone();
    if pw > w {
        let fill = Tensor::full(f32::NEG_INFINITY, (b, c, h, pw - w), xs.device())?
            .to_dtype(xs.dtype())?;
        xs = Tensor::cat(&[&xs, &fill], D::Minus1)?;
    }
    if ph > h {
        let fill = Tensor::full(f32::NEG_INFINITY, (b, c, ph - h, pw.max(w)), xs.device())?
            .to_dtype(xs.dtype())?;
        xs = Tensor::cat(&[&xs, &fill], 2)?;
    }
    xs.max_pool2d_with_stride(kernel, stride)
}

struct MaxPoolCeil {
    kernel: usize,
    stride: usize,
}

impl MaxPoolCeil {
    fn out_len(&self, n: usize) -> usize {
        let o = n.saturating_sub(self.kernel).div_ceil(self.stride) + 1;
        if (o - 1) * self.stride >= n {
            o - 1
        } else {
            o
        }
    }
}

impl CustomOp1 for MaxPoolCeil {
    fn name(&self) -> &'static str {
        "mtcnn-max-pool-ceil"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("mtcnn-max-pool-ceil: expected f32 input");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("mtcnn-max-pool-ceil: input must be contiguous");
        };
        let (b, c, h, w) = layout.shape().dims4()?;
        let (oh, ow) = (self.out_len(h), self.out_len(w));
        let out = kernels::max_pool(
            &data[start..end],
            b * c,
            (h, w),
            (self.kernel, self.stride),
            (oh, ow),
        );
        Ok((CpuStorage::F32(out), Shape::from((b, c, oh, ow))))
    }
}

/// facenet-pytorch's flatten before the first dense layer: NCHW permuted to NWHC, so the
/// flat index is `(w * H + h) * C + c` (the original Caffe weights were trained on
/// transposed images). [b, c, h, w] -> [b, w * h * c]
pub fn flatten_whc(xs: &Tensor) -> Result<Tensor> {
    xs.permute((0, 3, 2, 1))?.contiguous()?.flatten_from(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ceil_mode_pooling_keeps_partial_windows() {
        // 5x5, kernel 3, stride 2: ceil((5 - 3) / 2) + 1 = 2 windows per axis; the 100 sits in
        // the last row and column.
        let v: Vec<f32> = (0..25)
            .map(|i| if i == 24 { 100.0 } else { -(i as f32) })
            .collect();
        let xs = Tensor::from_vec(v, (1, 1, 5, 5), &Device::Cpu).unwrap();
        let out = max_pool_ceil(&xs, 3, 2).unwrap();
        assert_eq!(
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, -2.0, -10.0, 100.0]
        );
        // 2x5, kernel 2, stride 2: 1 x 3 windows, the last one column wide (floor mode: 2).
        let xs = Tensor::arange(0f32, 10.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 5))
            .unwrap();
        let out = max_pool_ceil(&xs, 2, 2).unwrap();
        assert_eq!(
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![6.0, 8.0, 9.0]
        );
    }

    #[test]
    fn prelu_scales_negatives_per_channel() {
        let vb = VarBuilder::from_tensors(
            [(
                "weight".to_string(),
                Tensor::new(&[0.5f32, 2.0], &Device::Cpu).unwrap(),
            )]
            .into(),
            DType::F32,
            &Device::Cpu,
        );
        let prelu = PRelu::new(2, vb).unwrap();
        let xs = Tensor::new(&[[[-2f32, 3.0]], [[-1.0, 4.0]]], &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 1, 2))
            .unwrap();
        let out = prelu
            .forward(&xs)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(out, vec![-1.0, 3.0, -2.0, 4.0]);
    }

    #[test]
    fn cpu_convolution_matches_candle() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 4, &dev).unwrap();
        let vb = VarBuilder::from_tensors(
            [
                ("weight".to_string(), w.clone()),
                ("bias".to_string(), b.clone()),
            ]
            .into(),
            DType::F32,
            &dev,
        );
        let conv = Conv::new(3, 4, 3, vb).unwrap();
        let xs = Tensor::randn(0f32, 1.0, (2, 3, 7, 9), &dev).unwrap();
        let want = xs
            .conv2d(&w, 0, 1, 1, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, 4, 1, 1)).unwrap())
            .unwrap();
        let got = conv.forward(&xs).unwrap();
        assert_eq!(got.dims(), &[2, 4, 5, 7]);
        let diff = crate::testing::max_abs_diff(&got, &want);
        assert!(diff < 1e-4, "{diff}");
    }
}
