//! A 3x3, stride-1, zero-padded convolution as one matrix product: the nine shifted copies of
//! the input are stacked along the channels (tap-major) and multiplied by the kernel laid out
//! to match. On the small feature maps of the refinement block this is about twice as fast
//! as candle's general CPU convolution, whose im2col writes one strided element at a time.
//! The weights are candle_nn's `Conv2d` tensors (same names, same initialisation), so weight
//! files do not change, and the product is differentiable for training.

use candle_core::{Module, Result, Tensor};
use candle_nn::Conv2d;

#[derive(Debug, Clone)]
pub struct Conv3x3 {
    /// `[out, in, 3, 3]`, as candle_nn stores it.
    weight: Tensor,
    /// `[out]`.
    bias: Option<Tensor>,
}

impl From<Conv2d> for Conv3x3 {
    /// From a 3x3 candle_nn convolution with padding 1, stride 1, no dilation and one group
    /// (the caller's promise, checked in debug builds; `forward` checks the kernel's size).
    fn from(conv: Conv2d) -> Self {
        let cfg = conv.config();
        debug_assert!(cfg.padding == 1 && cfg.stride == 1 && cfg.dilation == 1 && cfg.groups == 1);
        Conv3x3 {
            weight: conv.weight().clone(),
            bias: conv.bias().cloned(),
        }
    }
}

impl Module for Conv3x3 {
    /// `[b, in, h, w]` -> `[b, out, h, w]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (out, cin, kh, kw) = self.weight.dims4()?;
        if (kh, kw) != (3, 3) {
            candle_core::bail!("Conv3x3 holds a {kh}x{kw} kernel");
        }
        let (b, c, h, w) = x.dims4()?;
        if c != cin {
            candle_core::bail!("Conv3x3 expects {cin} input channels, got {c}");
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{conv2d, conv2d_no_bias, Conv2dConfig, VarBuilder, VarMap};

    #[test]
    fn equals_candles_convolution_with_and_without_bias() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        for (k, (with_bias, h, w)) in [(true, 7, 9), (false, 8, 12)].into_iter().enumerate() {
            let cfg = Conv2dConfig {
                padding: 1,
                ..Default::default()
            };
            let x = Tensor::randn(0f32, 1.0, (2, 5, h, w), &dev).unwrap();
            let name = format!("c{k}");
            let conv = if with_bias {
                conv2d(5, 4, 3, cfg, vb.pp(&name)).unwrap()
            } else {
                conv2d_no_bias(5, 4, 3, cfg, vb.pp(&name)).unwrap()
            };
            if let Some(bias) = conv.bias() {
                // candle_nn starts biases small; make them matter.
                let var = vm.data().lock().unwrap()[&format!("{name}.bias")].clone();
                var.set(&(bias.ones_like().unwrap() * 0.7).unwrap())
                    .unwrap();
            }
            let want = conv.forward(&x).unwrap();
            let got = Conv3x3::from(conv).forward(&x).unwrap();
            assert_eq!(got.dims(), want.dims());
            let diff = crate::testing::max_abs_diff(&want, &got);
            assert!(diff < 1e-5, "{diff}");
        }
    }
}
