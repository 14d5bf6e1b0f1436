//! Layers the three MTCNN networks share: PReLU, ceil-mode max pooling and the Caffe-order
//! flatten before the first dense layer.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor, D};
use candle_nn::VarBuilder;

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
