//! Brightness-constancy features at full resolution, pooled to the features' grid.
//!
//! Frame 2 (grey) is warped at full resolution by the current flow (bilinearly upsampled from
//! the features' grid), and the terms of the brightness-constancy equation
//! `gx * u + gy * v + it = 0` are formed per pixel and averaged over each feature cell:
//! `gx^2, gy^2, gx * gy` from frame 1 (the same at every iteration) and `gx * it, gy * it,
//! it^2` from the residual `it = warped frame 2 - frame 1` (new at every iteration). These are
//! the sums a Lucas-Kanade step solves with; here they are inputs the refinement block learns
//! to read. Averaging full-resolution products keeps the sub-pixel evidence that pooling the
//! frames first would blur away.

use candle_core::{Result, Tensor};

use super::warp::warp;

/// One pair's full-resolution grey frames and frame 1's gradients.
#[derive(Debug, Clone)]
pub struct Photometric {
    stride: usize,
    /// Frame 1, grey: `[n, 1, h, w]`.
    i1: Tensor,
    /// Frame 2, grey: `[n, 1, h, w]`.
    i2: Tensor,
    /// Frame 1's gradients along x and y: `[n, 1, h, w]` each.
    gx: Tensor,
    gy: Tensor,
}

/// Central differences along dimension `dim` (3: x, 2: y) with the border replicated.
fn gradient(img: &Tensor, dim: usize) -> Result<Tensor> {
    let len = img.dim(dim)?;
    let padded = img.pad_with_same(dim, 1, 1)?;
    (padded.narrow(dim, 2, len)? - padded.narrow(dim, 0, len)?)? * 0.5
}

impl Photometric {
    /// From the normalised frames `[n, 3, h, w]` of a pair.
    pub fn new(x1: &Tensor, x2: &Tensor, stride: usize) -> Result<Self> {
        let i1 = x1.mean_keepdim(1)?;
        let i2 = x2.mean_keepdim(1)?;
        Ok(Photometric {
            stride,
            gx: gradient(&i1, 3)?,
            gy: gradient(&i1, 2)?,
            i1,
            i2,
        })
    }

    /// The terms that do not depend on the flow, pooled: `[n, 3, H, W]`
    /// (`gx^2, gy^2, gx * gy`).
    pub fn structure(&self) -> Result<Tensor> {
        let terms = Tensor::cat(&[self.gx.sqr()?, self.gy.sqr()?, (&self.gx * &self.gy)?], 1)?;
        terms.avg_pool2d(self.stride)
    }

    /// The residual terms under the coarse flow `[n, 2, H, W]` (feature pixels), pooled:
    /// `[n, 3, H, W]` (`gx * it, gy * it, it^2`).
    pub fn residual(&self, coarse_flow: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = self.i1.dims4()?;
        let full = (coarse_flow.upsample_bilinear2d(h, w, false)? * self.stride as f64)?;
        let it = (warp(&self.i2, &full)? - &self.i1)?;
        let terms = Tensor::cat(&[(&self.gx * &it)?, (&self.gy * &it)?, it.sqr()?], 1)?;
        terms.avg_pool2d(self.stride)
    }
}
