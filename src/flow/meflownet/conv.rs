//! MEFlowNet's convolutions (3x3 or 1x1, stride 1 or 2, zero padding `k / 2`), with two
//! ways to run them:
//!
//! - **Autograd** (training, or weights that are `Var`s): candle ops. A 3x3 stride-1
//!   convolution is one matrix product over the nine shifted copies of the input, stacked
//!   along the channels (tap-major) and multiplied by the kernel laid out to match; on the
//!   small feature maps here that is about twice as fast as candle's general convolution,
//!   whose im2col writes one strided element at a time. Other shapes use candle's own.
//! - **Inference** (constant weights, an input that tracks no gradient): the packed CPU
//!   kernels the face networks run on ([`crate::face::tflite::ConvCpu`]: one im2col, one
//!   register-tiled matrix product with the bias fused), about three times fewer
//!   allocations and copies than the candle graph of the same convolution.
//!
//! The weights are candle_nn's `Conv2d` tensors (same names, same initialisation), so weight
//! files do not change.

use candle_core::{Module, Result, Tensor};
use candle_nn::Conv2d;

use crate::face::kernels::{Activation, Epilogue, Packed};
use crate::face::tflite::ConvCpu;

#[derive(Debug, Clone)]
pub struct Conv {
    /// `[out, in, k, k]`, as candle_nn stores it.
    weight: Tensor,
    /// `[out]`.
    bias: Option<Tensor>,
    /// The candle convolution, for the shapes the tap product does not cover.
    candle: Conv2d,
    /// The inference form, when the weights are constants.
    fast: Option<Fast>,
}

#[derive(Debug, Clone)]
struct Fast {
    conv: ConvCpu,
    bias: Option<Vec<f32>>,
}

impl Conv {
    /// From a candle_nn convolution with padding `k / 2`, no dilation and one group, a square
    /// kernel of 1 or 3 (the caller's promise, checked here).
    pub fn new(conv: Conv2d) -> Result<Self> {
        let cfg = *conv.config();
        let weight = conv.weight().clone();
        let (out, cin, kh, kw) = weight.dims4()?;
        if kh != kw || cfg.padding != kh / 2 || cfg.dilation != 1 || cfg.groups != 1 {
            candle_core::bail!("MEFlowNet convolutions are square, padded k/2, dense");
        }
        let bias = conv.bias().cloned();
        let fast = if weight.is_variable() || bias.as_ref().is_some_and(Tensor::is_variable) {
            None
        } else {
            let w = weight.flatten_all()?.to_vec1::<f32>()?;
            let p = cfg.padding;
            Some(Fast {
                conv: ConvCpu {
                    weight: Packed::new(&w, out, cin * kh * kw),
                    k: (kh, kw),
                    stride: cfg.stride,
                    pad: [p; 4],
                },
                bias: bias.as_ref().map(|b| b.to_vec1::<f32>()).transpose()?,
            })
        };
        Ok(Conv {
            weight,
            bias,
            candle: conv,
            fast,
        })
    }

    /// The autograd form of a 3x3 stride-1 convolution: one product over nine shifted copies.
    fn taps(&self, x: &Tensor) -> Result<Tensor> {
        let (out, cin, _, _) = self.weight.dims4()?;
        let (b, _, h, w) = x.dims4()?;
        let padded = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
        let mut taps = Vec::with_capacity(9);
        for dy in 0..3 {
            for dx in 0..3 {
                taps.push(padded.narrow(2, dy, h)?.narrow(3, dx, w)?);
            }
        }
        // [b, 9 * in, h * w], channel index (3 * dy + dx) * in + c
        let cols = Tensor::cat(&taps, 1)?.reshape((b, 9 * cin, h * w))?;
        // [out, 9 * in] in the same order
        let kernel = self.weight.permute((0, 2, 3, 1))?.reshape((out, 9 * cin))?;
        let mut y = kernel.broadcast_matmul(&cols)?; // [b, out, h * w]
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(&bias.reshape((1, out, 1))?)?;
        }
        y.reshape((b, out, h, w))
    }

    /// The inference form: the input copied out once, one im2col and one product per image,
    /// the residual and the activation applied as results are stored.
    fn packed(
        &self,
        fast: &Fast,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let dims = x.dims4()?;
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        let res = residual
            .map(|r| r.flatten_all()?.to_vec1::<f32>())
            .transpose()?;
        let ep = Epilogue {
            bias: fast.bias.as_deref(),
            residual: None,
            act: if relu {
                Activation::Relu
            } else {
                Activation::None
            },
        };
        let (oh, ow) = fast.conv.out_size((dims.2, dims.3));
        let shape = (dims.0, fast.conv.weight.rows(), oh, ow);
        if let Some(r) = &res {
            if r.len() != shape.0 * shape.1 * oh * ow {
                candle_core::bail!("MEFlowNet convolution: residual is not {shape:?}");
            }
        }
        let y = fast.conv.run(&data, dims, res.as_deref(), ep);
        Tensor::from_vec(y, shape, x.device())
    }

    /// `act(conv(x) + residual)`, `act` ReLU or nothing: one pass at inference, candle ops
    /// otherwise.
    pub fn forward_fused(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        relu: bool,
    ) -> Result<Tensor> {
        let (_, cin, kh, _) = self.weight.dims4()?;
        let c = x.dim(1)?;
        if c != cin {
            candle_core::bail!("MEFlowNet convolution expects {cin} input channels, got {c}");
        }
        let constant = |t: &Tensor| !t.track_op() && t.device().is_cpu();
        if let Some(fast) = &self.fast {
            if self.packed_for(x) && residual.is_none_or(constant) {
                return self.packed(fast, x, residual, relu);
            }
        }
        let mut y = if kh == 3 && self.candle.config().stride == 1 {
            self.taps(x)?
        } else {
            self.candle.forward(x)?
        };
        if let Some(r) = residual {
            y = (y + r)?;
        }
        if relu {
            y = y.relu()?;
        }
        Ok(y)
    }

    /// Whether `x` would run on the packed kernels (constant weights and input).
    pub fn packed_for(&self, x: &Tensor) -> bool {
        self.fast.is_some() && !x.track_op() && x.device().is_cpu()
    }

    /// `relu(conv(x))`.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_fused(x, None, true)
    }
}

impl Module for Conv {
    /// `[b, in, h, w]` -> `[b, out, h / stride, w / stride]` (rounded up).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_fused(x, None, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{conv2d, conv2d_no_bias, Conv2dConfig, VarBuilder, VarMap};

    #[test]
    fn both_forms_equal_candles_convolution() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let cases = [
            // (kernel, stride, bias, h, w)
            (3, 1, true, 7, 9),
            (3, 1, false, 8, 12),
            (3, 2, true, 9, 10),
            (1, 1, true, 5, 6),
        ];
        for (n, (k, stride, with_bias, h, w)) in cases.into_iter().enumerate() {
            let cfg = Conv2dConfig {
                padding: k / 2,
                stride,
                ..Default::default()
            };
            let x = Tensor::randn(0f32, 1.0, (2, 5, h, w), &dev).unwrap();
            let name = format!("c{n}");
            let conv = if with_bias {
                conv2d(5, 4, k, cfg, vb.pp(&name)).unwrap()
            } else {
                conv2d_no_bias(5, 4, k, cfg, vb.pp(&name)).unwrap()
            };
            if let Some(bias) = conv.bias() {
                // candle_nn starts biases small; make them matter.
                let var = vm.data().lock().unwrap()[&format!("{name}.bias")].clone();
                var.set(&(bias.ones_like().unwrap() * 0.7).unwrap())
                    .unwrap();
            }
            let want = conv.forward(&x).unwrap();
            // Var weights: the autograd form.
            let autograd = Conv::new(conv.clone()).unwrap();
            assert!(autograd.fast.is_none());
            // The same weights as constants: the packed form.
            let constant =
                Conv2d::new(conv.weight().detach(), conv.bias().map(Tensor::detach), cfg);
            let packed = Conv::new(constant).unwrap();
            assert!(packed.fast.is_some());
            for (form, conv) in [("autograd", autograd), ("packed", packed)] {
                let got = conv.forward(&x).unwrap();
                assert_eq!(got.dims(), want.dims(), "{form} k{k} s{stride}");
                let diff = crate::testing::max_abs_diff(&want, &got);
                assert!(diff < 1e-5, "{form} k{k} s{stride}: {diff}");
                // relu(conv(x) + r)
                let r = Tensor::randn(0f32, 1.0, want.dims(), &dev).unwrap();
                let fused = conv.forward_fused(&x, Some(&r), true).unwrap();
                let want = (&want + &r).unwrap().relu().unwrap();
                let diff = crate::testing::max_abs_diff(&want, &fused);
                assert!(diff < 1e-5, "{form} fused k{k} s{stride}: {diff}");
            }
        }
    }
}
