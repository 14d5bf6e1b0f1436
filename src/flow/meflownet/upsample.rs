//! Learned convex upsampling: each full-resolution pixel is a softmax-weighted combination of
//! the 3x3 coarse neighbourhood around its coarse cell, the weights predicted per sub-pixel.

use candle_core::{Result, Tensor, D};

/// Upsamples `x` `[b, c, H, W]` by `r` with `mask` `[b, 9 * r * r, H, W]` (logits, neighbour
/// major: index `k * r * r + i * r + j` is neighbour `k` of sub-pixel row `i`, column `j`).
/// The border is replicated. Returns `[b, c, r * H, r * W]`. Flow must be scaled by `r`
/// beforehand (coarse pixels -> fine pixels).
pub fn convex_upsample(x: &Tensor, mask: &Tensor, r: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if !x.track_op() && !mask.track_op() {
        return convex_upsample_constant(x, mask, r);
    }
    // The 9 neighbours last, so the softmax and the weighted sum reduce contiguous rows.
    let mask = mask
        .reshape((b, 9, r * r, h * w))?
        .permute((0, 2, 3, 1))?
        .contiguous()?; // [b, r * r, H * W, 9]
    let mask = candle_nn::ops::softmax(&mask, D::Minus1)?;
    let padded = x.pad_with_same(2, 1, 1)?.pad_with_same(3, 1, 1)?; // [b, c, H+2, W+2]
    let mut neighbours = Vec::with_capacity(9);
    for dy in 0..3 {
        for dx in 0..3 {
            neighbours.push(padded.narrow(2, dy, h)?.narrow(3, dx, w)?);
        }
    }
    let n = Tensor::stack(&neighbours, 4)?.reshape((b, c, 1, h * w, 9))?;
    let up = mask.unsqueeze(1)?.broadcast_mul(&n)?.sum(D::Minus1)?; // [b, c, r * r, H * W]
    let up = up.reshape(vec![b, c, r, r, h, w])?;
    up.permute((0, 1, 4, 2, 5, 3))? // [b, c, H, r, W, r]
        .reshape((b, c, h * r, w * r))
}

/// [`convex_upsample`] at inference: one pass, no intermediate tensors (the candle form
/// builds a `[b, c, r * r, H * W, 9]` product and hands it to candle's thread pool).
fn convex_upsample_constant(x: &Tensor, mask: &Tensor, r: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if mask.dims4()? != (b, 9 * r * r, h, w) {
        candle_core::bail!(
            "convex upsampling: mask {:?} for {:?}",
            mask.dims(),
            x.dims()
        );
    }
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let ms = mask.flatten_all()?.to_vec1::<f32>()?;
    let (hw, rr) = (h * w, r * r);
    let (oh, ow) = (h * r, w * r);
    let mut out = vec![0f32; b * c * oh * ow];
    let mut weights = [0f32; 9];
    for bi in 0..b {
        let m = &ms[bi * 9 * rr * hw..][..9 * rr * hw];
        let img = &xs[bi * c * hw..][..c * hw];
        let dst = &mut out[bi * c * oh * ow..][..c * oh * ow];
        for y in 0..h {
            for xx in 0..w {
                let p = y * w + xx;
                // the 3x3 neighbourhood, border replicated (as `pad_with_same`)
                let near: [usize; 9] = std::array::from_fn(|k| {
                    let ny = (y + k / 3).saturating_sub(1).min(h - 1);
                    let nx = (xx + k % 3).saturating_sub(1).min(w - 1);
                    ny * w + nx
                });
                for s in 0..rr {
                    // softmax over the nine neighbours of sub-pixel s
                    let logit = |k: usize| m[(k * rr + s) * hw + p];
                    let top = (0..9).map(logit).fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for (k, wk) in weights.iter_mut().enumerate() {
                        *wk = (logit(k) - top).exp();
                        sum += *wk;
                    }
                    let (sy, sx) = (s / r, s % r);
                    let o = (y * r + sy) * ow + xx * r + sx;
                    for ci in 0..c {
                        let plane = &img[ci * hw..][..hw];
                        let v: f32 = weights.iter().zip(near).map(|(wk, q)| wk * plane[q]).sum();
                        dst[ci * oh * ow + o] = v / sum;
                    }
                }
            }
        }
    }
    Tensor::from_vec(out, (b, c, oh, ow), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_constant_field_stays_constant_and_a_peaked_mask_copies_the_centre() {
        let dev = Device::Cpu;
        let x = Tensor::full(3.5f32, (1, 2, 4, 5), &dev).unwrap();
        let mask = Tensor::randn(0f32, 1.0, (1, 9 * 4, 4, 5), &dev).unwrap();
        let up = convex_upsample(&x, &mask, 2).unwrap();
        assert_eq!(up.dims(), &[1, 2, 8, 10]);
        let v = up.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|a| (a - 3.5).abs() < 1e-5));

        // A mask that puts all weight on the centre neighbour (k = 4) is nearest upsampling.
        let x = Tensor::arange(0f32, 6.0, &dev)
            .unwrap()
            .reshape((1, 1, 2, 3))
            .unwrap();
        let mut m = vec![0f32; 9 * 4 * 6];
        for s in 0..4 {
            for p in 0..6 {
                m[(4 * 4 + s) * 6 + p] = 50.0;
            }
        }
        let mask = Tensor::from_vec(m, (1, 36, 2, 3), &dev).unwrap();
        let up = convex_upsample(&x, &mask, 2).unwrap();
        let rows = up
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let close =
            |got: &[f32], want: &[f32]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-4);
        assert!(
            close(&rows[0], &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]),
            "{:?}",
            rows[0]
        );
        assert!(
            close(&rows[3], &[3.0, 3.0, 4.0, 4.0, 5.0, 5.0]),
            "{:?}",
            rows[3]
        );
    }

    #[test]
    fn the_inference_form_equals_the_autograd_form() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).unwrap();
        let mask = Tensor::randn(0f32, 2.0, (2, 9 * 16, 4, 5), &dev).unwrap();
        let want = convex_upsample(&candle_core::Var::from_tensor(&x).unwrap(), &mask, 4).unwrap();
        let got = convex_upsample(&x, &mask, 4).unwrap();
        assert_eq!(got.dims(), &[2, 3, 16, 20]);
        let diff = crate::testing::max_abs_diff(&want, &got);
        assert!(diff < 1e-5, "{diff}");
    }
}
