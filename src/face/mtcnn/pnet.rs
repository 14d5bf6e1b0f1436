//! P-Net, MTCNN's first stage: a fully convolutional proposal network run on every level of
//! the image pyramid. Each output cell sees a 12x12 window of its level, stride 2.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{max_pool_ceil, Conv, PRelu};

#[derive(Debug, Clone)]
pub struct PNet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    conv4_1: Conv,
    conv4_2: Conv,
}

impl PNet {
    /// `vb` points at the `pnet.` tensors.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(PNet {
            conv1: Conv::new(3, 10, 3, vb.pp("conv1"))?,
            prelu1: PRelu::new(10, vb.pp("prelu1"))?,
            conv2: Conv::new(10, 16, 3, vb.pp("conv2"))?,
            prelu2: PRelu::new(16, vb.pp("prelu2"))?,
            conv3: Conv::new(16, 32, 3, vb.pp("conv3"))?,
            prelu3: PRelu::new(32, vb.pp("prelu3"))?,
            conv4_1: Conv::new(32, 2, 1, vb.pp("conv4_1"))?,
            conv4_2: Conv::new(32, 4, 1, vb.pp("conv4_2"))?,
        })
    }

    /// `xs`: normalised RGB [b, 3, h, w]. Returns `(reg, prob)`: box regression
    /// [b, 4, oh, ow] and softmax face probabilities [b, 2, oh, ow] (channel 1 = face), with
    /// `oh = ceil((h - 2) / 2) - 4` (likewise `ow`).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let xs = self.conv1.forward_prelu(xs, &self.prelu1)?; // [b, 10, h-2, w-2]
        let xs = max_pool_ceil(&xs, 2, 2)?; // [b, 10, ceil((h-2)/2), ..]
        let xs = self.conv2.forward_prelu(&xs, &self.prelu2)?; // [b, 16, .., ..]
        let xs = self.conv3.forward_prelu(&xs, &self.prelu3)?; // [b, 32, oh, ow]
        let prob = candle_nn::ops::softmax(&self.conv4_1.forward(&xs)?, 1)?; // [b, 2, oh, ow]
        let reg = self.conv4_2.forward(&xs)?; // [b, 4, oh, ow]
        Ok((reg, prob))
    }
}
