//! Bilinear backward warping built from `gather` (candle has no `grid_sample`).
//!
//! `warp(img, flow)[x] = img(x + flow(x))`, sampled bilinearly, replicating the border. The
//! result is differentiable in both `img` (through `gather`, whose backward is a scatter-add)
//! and `flow` (through the bilinear weights `x - floor(x)`; the integer corners are constants).

use candle_core::{DType, IndexOp, Result, Tensor};

/// Samples `img` `[b, c, h, w]` at `x + flow(x)`, `flow` `[b, 2, h, w]` (u then v, in pixels
/// of this grid). Returns `[b, c, h, w]`.
pub fn warp(img: &Tensor, flow: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = img.dims4()?;
    let dev = img.device();
    let gx = Tensor::arange(0f32, w as f32, dev)?
        .reshape((1, 1, w))?
        .broadcast_as((b, h, w))?;
    let gy = Tensor::arange(0f32, h as f32, dev)?
        .reshape((1, h, 1))?
        .broadcast_as((b, h, w))?;
    let x = flow.i((.., 0))?.broadcast_add(&gx)?; // [b, h, w]
    let y = flow.i((.., 1))?.broadcast_add(&gy)?;
    let x0 = x.detach().floor()?;
    let y0 = y.detach().floor()?;
    let wx = (&x - &x0)?.unsqueeze(1)?; // [b, 1, h, w], in [0, 1)
    let wy = (&y - &y0)?.unsqueeze(1)?;
    let x1 = (&x0 + 1.0)?;
    let y1 = (&y0 + 1.0)?;
    let flat = img.contiguous()?.reshape((b, c, h * w))?;
    let corner = |xs: &Tensor, ys: &Tensor| -> Result<Tensor> {
        let xc = xs.clamp(0f32, (w - 1) as f32)?;
        let yc = ys.clamp(0f32, (h - 1) as f32)?;
        let index = ((yc * w as f64)? + xc)?
            .to_dtype(DType::U32)?
            .reshape((b, 1, h * w))?
            .broadcast_as((b, c, h * w))?
            .contiguous()?;
        flat.gather(&index, 2)?.reshape((b, c, h, w))
    };
    let v00 = corner(&x0, &y0)?;
    let v10 = corner(&x1, &y0)?;
    let v01 = corner(&x0, &y1)?;
    let v11 = corner(&x1, &y1)?;
    let top = (&v00 + (v10 - &v00)?.broadcast_mul(&wx)?)?;
    let bottom = (&v01 + (v11 - &v01)?.broadcast_mul(&wx)?)?;
    &top + (bottom - &top)?.broadcast_mul(&wy)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// `[1, 1, h, w]` holding `f(x, y)`.
    fn image(h: usize, w: usize, f: impl Fn(f32, f32) -> f32) -> Tensor {
        let data: Vec<f32> = (0..h * w)
            .map(|i| f((i % w) as f32, (i / w) as f32))
            .collect();
        Tensor::from_vec(data, (1, 1, h, w), &Device::Cpu).unwrap()
    }

    fn flow(h: usize, w: usize, f: impl Fn(f32, f32) -> (f32, f32)) -> Tensor {
        let u = image(h, w, |x, y| f(x, y).0);
        let v = image(h, w, |x, y| f(x, y).1);
        Tensor::cat(&[u, v], 1).unwrap()
    }

    #[test]
    fn constant_flow_on_an_affine_image_is_exact_inside() {
        // Bilinear interpolation reproduces an affine function exactly, so inside the frame
        // (where no border replication happens) the warp equals the target everywhere.
        let (h, w) = (12, 16);
        let f = |x: f32, y: f32| 0.7 * x - 0.3 * y + 2.0;
        let (du, dv) = (1.3f32, -0.6f32);
        let out = warp(&image(h, w, f), &flow(h, w, |_, _| (du, dv))).unwrap();
        let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut checked = 0;
        for y in 1..h - 1 {
            for x in 0..w - 3 {
                let want = f(x as f32 + du, y as f32 + dv);
                let got = out[y * w + x];
                assert!((got - want).abs() < 1e-4, "({x},{y}): {got} vs {want}");
                checked += 1;
            }
        }
        assert!(checked > 100);
    }

    #[test]
    fn integer_shift_of_a_random_image_reproduces_the_target() {
        let (h, w) = (10, 9);
        let src = Tensor::randn(0f32, 1.0, (2, 3, h, w), &Device::Cpu).unwrap();
        // flow (2, -1): out[y][x] = src[y - 1][x + 2]
        let fl = Tensor::cat(
            &[
                Tensor::full(2f32, (2, 1, h, w), &Device::Cpu).unwrap(),
                Tensor::full(-1f32, (2, 1, h, w), &Device::Cpu).unwrap(),
            ],
            1,
        )
        .unwrap();
        let out = warp(&src, &fl).unwrap();
        let got = out
            .narrow(2, 1, h - 1)
            .unwrap()
            .narrow(3, 0, w - 2)
            .unwrap();
        let want = src
            .narrow(2, 0, h - 1)
            .unwrap()
            .narrow(3, 2, w - 2)
            .unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        // Beyond the border the last column is replicated.
        let last = out
            .narrow(3, w - 1, 1)
            .unwrap()
            .narrow(2, 1, h - 1)
            .unwrap();
        let edge = src
            .narrow(3, w - 1, 1)
            .unwrap()
            .narrow(2, 0, h - 1)
            .unwrap();
        let diff = (last - edge).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    }

    #[test]
    fn affine_flow_on_a_smooth_image_matches_the_warped_function() {
        // A slow image and an affine (zoom + rotation + shift) flow: bilinear error stays
        // small, and the warp tracks the analytic target.
        let (h, w) = (32, 32);
        let f = |x: f32, y: f32| (0.15 * x).sin() + (0.1 * y).cos();
        let a = |x: f32, y: f32| (0.5 + 0.03 * x - 0.02 * y, -0.4 + 0.02 * x + 0.01 * y);
        let out = warp(&image(h, w, f), &flow(h, w, a)).unwrap();
        let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut worst = 0f32;
        for y in 2..h - 4 {
            for x in 2..w - 4 {
                let (u, v) = a(x as f32, y as f32);
                let want = f(x as f32 + u, y as f32 + v);
                worst = worst.max((out[y * w + x] - want).abs());
            }
        }
        // Bilinear error bound: (h^2 / 8) * max|f''| = 0.125 * 0.0225 < 0.003.
        assert!(worst < 5e-3, "worst {worst}");
        // And it is not the identity: somewhere the unwarped image is far from the target.
        let mut moved = 0f32;
        for y in 2..h - 4 {
            for x in 2..w - 4 {
                let (u, v) = a(x as f32, y as f32);
                moved = moved.max((f(x as f32, y as f32) - f(x as f32 + u, y as f32 + v)).abs());
            }
        }
        assert!(moved > 0.1, "moved {moved}");
    }

    #[test]
    fn gradient_in_flow_matches_finite_differences() {
        let (h, w) = (8, 8);
        let img = image(h, w, |x, y| {
            (0.5 * x).sin() * (0.3 * y + 0.2).cos() + 0.1 * x
        });
        let base = flow(h, w, |x, y| (0.3 + 0.05 * x, -0.2 + 0.04 * y));
        let r = Tensor::randn(0f32, 1.0, (1, 1, h, w), &Device::Cpu).unwrap();
        let objective =
            |fl: &Tensor| -> Tensor { (warp(&img, fl).unwrap() * &r).unwrap().sum_all().unwrap() };
        let var = Var::from_tensor(&base).unwrap();
        let grads = objective(var.as_tensor()).backward().unwrap();
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base_v = base.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let eps = 1e-2f32;
        let mut checked = 0;
        for k in [3usize, 19, 27, 40, 64 + 9, 64 + 30, 64 + 45] {
            let mut plus = base_v.clone();
            plus[k] += eps;
            let mut minus = base_v.clone();
            minus[k] -= eps;
            let t = |v: Vec<f32>| Tensor::from_vec(v, (1, 2, h, w), &Device::Cpu).unwrap();
            let fp = objective(&t(plus)).to_scalar::<f32>().unwrap();
            let fm = objective(&t(minus)).to_scalar::<f32>().unwrap();
            let numeric = (fp - fm) / (2.0 * eps);
            assert!(
                (numeric - g[k]).abs() < 2e-2 * (1.0 + numeric.abs()),
                "entry {k}: autograd {} vs numeric {numeric}",
                g[k]
            );
            checked += usize::from(numeric.abs() > 1e-3);
        }
        assert!(checked >= 4, "too few non-zero gradients checked");
        // The image gradient exists too (gather's backward).
        let ivar = Var::from_tensor(&img).unwrap();
        let gi = (warp(ivar.as_tensor(), &base).unwrap() * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let total = gi
            .get(ivar.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap();
        assert!(total.to_scalar::<f32>().unwrap() > 1.0);
    }
}
