//! Layers the three MTCNN networks share: a stride-1 convolution, PReLU, ceil-mode max
//! pooling and the Caffe-order flatten before the first dense layer.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Storage, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// A square, stride-1, unpadded convolution with bias (every MTCNN convolution).
///
/// On the CPU it builds the im2col matrix of the whole batch with row copies and runs one
/// matrix product, which is several times faster than candle's generic tiled convolution for
/// MTCNN's few-channel layers; elsewhere it is candle's `conv2d`.
#[derive(Debug, Clone)]
pub struct Conv {
    conv: Conv2d,
    /// [c_out, c_in * k * k]
    weight2d: Tensor,
    bias: Vec<f32>,
    c_in: usize,
    k: usize,
}

impl Conv {
    pub fn new(c_in: usize, c_out: usize, k: usize, vb: VarBuilder) -> Result<Self> {
        let conv = candle_nn::conv2d(c_in, c_out, k, Conv2dConfig::default(), vb)?;
        let weight2d = conv.weight().reshape((c_out, c_in * k * k))?.contiguous()?;
        let bias = match conv.bias() {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; c_out],
        };
        Ok(Conv { conv, weight2d, bias, c_in, k })
    }

    /// [b, c_in, h, w] -> [b, c_out, h - k + 1, w - k + 1]
    fn forward_cpu(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c_in, h, w) = xs.dims4()?;
        if c_in != self.c_in || h < self.k || w < self.k {
            candle_core::bail!("conv: input {:?} does not fit {} channels, kernel {}", xs.dims(), self.c_in, self.k);
        }
        let k = self.k;
        let (oh, ow) = (h - k + 1, w - k + 1);
        let npix = oh * ow;
        let xs = xs.contiguous()?;
        let (storage, layout) = xs.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            candle_core::bail!("conv: expected an f32 CPU tensor");
        };
        let src = &data[layout.start_offset()..layout.start_offset() + b * c_in * h * w];
        // im2col: row (ci, ky, kx) holds, for every image and output pixel, the input it sees
        // there. [c_in * k * k, b * oh * ow]
        let mut col = vec![0f32; c_in * k * k * b * npix];
        for (r, row) in col.chunks_exact_mut(b * npix).enumerate() {
            let (ci, ky, kx) = (r / (k * k), r / k % k, r % k);
            for (bi, dst) in row.chunks_exact_mut(npix).enumerate() {
                let plane = &src[(bi * c_in + ci) * h * w..][..h * w];
                for (oy, d) in dst.chunks_exact_mut(ow).enumerate() {
                    d.copy_from_slice(&plane[(oy + ky) * w + kx..][..ow]);
                }
            }
        }
        drop(storage);
        let col = Tensor::from_vec(col, (c_in * k * k, b * npix), xs.device())?;
        let prod = self.weight2d.matmul(&col)?; // [c_out, b * oh * ow]
        let (storage, layout) = prod.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            candle_core::bail!("conv: expected an f32 CPU tensor");
        };
        let c_out = self.bias.len();
        let prod = &data[layout.start_offset()..layout.start_offset() + c_out * b * npix];
        // Bias, and [c_out, b, oh * ow] -> [b, c_out, oh * ow].
        let mut out = Vec::with_capacity(b * c_out * npix);
        for bi in 0..b {
            for (co, &bias) in self.bias.iter().enumerate() {
                out.extend(prod[(co * b + bi) * npix..][..npix].iter().map(|&v| v + bias));
            }
        }
        Tensor::from_vec(out, (b, c_out, oh, ow), xs.device())
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if xs.device().is_cpu() && xs.dtype() == DType::F32 && self.weight2d.dtype() == DType::F32 {
            self.forward_cpu(xs)
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
            candle_core::bail!("mtcnn-prelu: input {:?} does not have {} channels", dims, self.slopes.len());
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
    let (b, c, h, w) = xs.dims4()?;
    let out_len = |n: usize| {
        let mut o = (n.saturating_sub(kernel)).div_ceil(stride) + 1;
        if (o - 1) * stride >= n {
            o -= 1;
        }
        o
    };
    let (oh, ow) = (out_len(h), out_len(w));
    let (ph, pw) = ((oh - 1) * stride + kernel, (ow - 1) * stride + kernel);
    let mut xs = xs.clone();
    if pw > w {
        let fill = Tensor::full(f32::NEG_INFINITY, (b, c, h, pw - w), xs.device())?.to_dtype(xs.dtype())?;
        xs = Tensor::cat(&[&xs, &fill], D::Minus1)?;
    }
    if ph > h {
        let fill = Tensor::full(f32::NEG_INFINITY, (b, c, ph - h, pw.max(w)), xs.device())?.to_dtype(xs.dtype())?;
        xs = Tensor::cat(&[&xs, &fill], 2)?;
    }
    xs.max_pool2d_with_stride(kernel, stride)
}

/// facenet-pytorch's flatten before the first dense layer: NCHW permuted to NWHC, so the
/// flat index is `(w * H + h) * C + c` (the original Caffe weights were trained on
/// transposed images). [b, c, h, w] -> [b, w * h * c]
pub fn flatten_whc(xs: &Tensor) -> Result<Tensor> {
    xs.permute((0, 3, 2, 1))?.contiguous()?.flatten_from(1)
}
