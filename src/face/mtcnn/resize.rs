//! Area resampling of 8-bit RGB into MTCNN's normalised planar input.
//!
//! facenet-pytorch resizes with `F.interpolate(mode="area")`, which is adaptive average
//! pooling: output pixel `(oy, ox)` of an `oh x ow` image resized from `h x w` is the mean of
//! input rows `floor(oy*h/oh) .. ceil((oy+1)*h/oh)` and columns `floor(ox*w/ow) ..
//! ceil((ox+1)*w/ow)` (windows may overlap when enlarging). The window sums of 8-bit pixels
//! are exact integers, and the mean is taken as `(sum / rows) / cols` in f32 like PyTorch's
//! CPU kernel, so the result is bit-identical to facenet-pytorch's. OpenCV's INTER_AREA is
//! not: it weights partial pixels for non-integer factors.

use crate::media::RgbImage;

/// MTCNN's input normalisation of a pixel value: `(p - 127.5) / 128`.
#[inline]
pub fn normalise(p: f32) -> f32 {
    (p - 127.5) * 0.0078125
}

/// A rectangle of image pixels: columns `x0..x0 + w`, rows `y0..y0 + h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
}

impl Region {
    pub fn whole(image: &RgbImage) -> Self {
        Region {
            x0: 0,
            y0: 0,
            w: image.width as usize,
            h: image.height as usize,
        }
    }
}

/// The input index range `[start, end)` that output index `i` of `out` averages over `len`.
#[inline]
fn window(i: usize, out: usize, len: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

/// Resizes `region` of `image` to `oh x ow` by area averaging and writes the normalised
/// result as planes (R, G, B) of `oh * ow` values into `dst` (`3 * oh * ow` long):
/// [3, oh, ow].
pub fn area_resize_planar(image: &RgbImage, region: Region, oh: usize, ow: usize, dst: &mut [f32]) {
    assert!(
        region.w > 0 && region.h > 0 && oh > 0 && ow > 0,
        "empty resize"
    );
    assert!(
        region.x0 + region.w <= image.width as usize
            && region.y0 + region.h <= image.height as usize
    );
    assert_eq!(dst.len(), 3 * oh * ow);
    let stride = image.width as usize * 3;
    let cols: Vec<(usize, usize)> = (0..ow).map(|ox| window(ox, ow, region.w)).collect();

    // Horizontal pass over every row of the region: [h, ow, 3] window sums.
    let mut row_sums = vec![0u32; region.h * ow * 3];
    for (r, sums) in row_sums.chunks_exact_mut(ow * 3).enumerate() {
        let start = (region.y0 + r) * stride + region.x0 * 3;
        let row = &image.data[start..start + region.w * 3];
        for (&(xs, xe), s) in cols.iter().zip(sums.chunks_exact_mut(3)) {
            let (mut a, mut b, mut c) = (0u32, 0u32, 0u32);
            for px in row[xs * 3..xe * 3].chunks_exact(3) {
                a += px[0] as u32;
                b += px[1] as u32;
                c += px[2] as u32;
            }
            s.copy_from_slice(&[a, b, c]);
        }
    }

    // Vertical pass: [3, oh, ow] means, normalised.
    let plane = oh * ow;
    let mut acc = vec![0u32; ow * 3];
    for oy in 0..oh {
        let (ys, ye) = window(oy, oh, region.h);
        acc.iter_mut().for_each(|a| *a = 0);
        for sums in row_sums[ys * ow * 3..ye * ow * 3].chunks_exact(ow * 3) {
            acc.iter_mut().zip(sums).for_each(|(a, &s)| *a += s);
        }
        let kh = (ye - ys) as f32;
        for (ox, &(xs, xe)) in cols.iter().enumerate() {
            let kw = (xe - xs) as f32;
            for ch in 0..3 {
                let mean = acc[ox * 3 + ch] as f32 / kh / kw;
                dst[ch * plane + oy * ow + ox] = normalise(mean);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 37 + i / 7) % 256) as u8;
        }
        img
    }

    #[test]
    fn windows_match_adaptive_pooling() {
        // 5 -> 3: floor/ceil windows [0,2), [1,4), [3,5) overlap by one.
        assert_eq!(
            (0..3).map(|i| window(i, 3, 5)).collect::<Vec<_>>(),
            vec![(0, 2), (1, 4), (3, 5)]
        );
        // Enlarging 2 -> 4 repeats each input.
        assert_eq!(
            (0..4).map(|i| window(i, 4, 2)).collect::<Vec<_>>(),
            vec![(0, 1), (0, 1), (1, 2), (1, 2)]
        );
    }

    #[test]
    fn averages_the_window_of_a_region() {
        let img = image(9, 7);
        let region = Region {
            x0: 2,
            y0: 1,
            w: 6,
            h: 4,
        };
        let mut out = vec![0.0; 3 * 2 * 3];
        area_resize_planar(&img, region, 2, 3, &mut out);
        // Output (1, 2), green: rows 3..5, columns 6..8 of the image.
        let sum: u32 = (3..5)
            .flat_map(|y| (6..8).map(move |x| (x, y)))
            .map(|(x, y)| img.pixel(x, y)[1] as u32)
            .sum();
        let expected = normalise(sum as f32 / 2.0 / 2.0);
        assert_eq!(out[6 + 3 + 2], expected);
        // Same size is the identity.
        let mut same = vec![0.0; 3 * 7 * 9];
        area_resize_planar(&img, Region::whole(&img), 7, 9, &mut same);
        assert_eq!(
            same[2 * 63 + 4 * 9 + 5],
            normalise(img.pixel(5, 4)[2] as f32)
        );
    }
}
