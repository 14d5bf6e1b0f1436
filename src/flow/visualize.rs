//! The optical-flow colour map (the Middlebury colour wheel of Baker et al., "A Database and
//! Evaluation Methodology for Optical Flow"): hue gives the direction of motion, saturation
//! its magnitude relative to a maximum, white is no motion.
//!
//! The wheel runs through six hue segments whose lengths (15 red->yellow, 6 yellow->green,
//! 4 green->cyan, 11 cyan->blue, 13 blue->magenta, 6 magenta->red; 55 steps in all) space
//! the colours so equal angles look about equally different. Angle 0 of the wheel is motion
//! to the right (+x, red); going round, motion down (+y, on screen) is orange-yellow, left
//! (-x) is cyan-blue, up (-y) is blue-magenta. A flow `(u, v)` with magnitude `m` and maximum
//! `M` gets the wheel colour `c` at its angle, mixed with white: `255 - (m / M) (255 - c)`;
//! beyond `M` the colour is darkened to 75 %. Unknown flow (see
//! [`crate::eval::flow::is_unknown`]) is black.

use opencv::core::{Point as CvPoint, Scalar};
use opencv::imgproc;

use crate::error::Result;
use crate::eval::flow::{is_unknown, Flow};
use crate::media::RgbImage;

/// The smallest maximum magnitude [`flow_to_rgb`] normalises by, px: a zero flow comes out
/// white rather than dividing by zero.
pub const MIN_MAX_MAGNITUDE: f32 = 1e-3;

/// The wheel's hue segments: (steps, start colour); each runs to the next one's start.
const SEGMENTS: [(usize, [f32; 3]); 6] = [
    (15, [255.0, 0.0, 0.0]),   // red -> yellow
    (6, [255.0, 255.0, 0.0]),  // yellow -> green
    (4, [0.0, 255.0, 0.0]),    // green -> cyan
    (11, [0.0, 255.0, 255.0]), // cyan -> blue
    (13, [0.0, 0.0, 255.0]),   // blue -> magenta
    (6, [255.0, 0.0, 255.0]),  // magenta -> red
];

/// The number of colour steps round the wheel.
fn wheel_steps() -> usize {
    SEGMENTS.iter().map(|s| s.0).sum()
}

/// The fully saturated wheel colour at step `k` (0 <= k < 55, fractional): linear between the
/// steps' colours, round the wheel.
fn wheel_colour(k: f32) -> [f32; 3] {
    let n = wheel_steps();
    let step = |i: usize| -> [f32; 3] {
        let i = i % n;
        let mut first = 0;
        for (s, (len, start)) in SEGMENTS.iter().enumerate() {
            if i < first + len {
                let end = SEGMENTS[(s + 1) % SEGMENTS.len()].1;
                let t = (i - first) as f32 / *len as f32;
                return [0, 1, 2].map(|c| start[c] + t * (end[c] - start[c]));
            }
            first += len;
        }
        unreachable!("step {i} is below the wheel's {n} steps")
    };
    let k = k.rem_euclid(n as f32);
    let k0 = k.floor() as usize;
    let f = k - k0 as f32;
    let (a, b) = (step(k0), step(k0 + 1));
    [0, 1, 2].map(|c| (1.0 - f) * a[c] + f * b[c])
}

/// The colour of one flow vector `(u, v)` for the maximum magnitude `max` (> 0): white at
/// zero, the wheel's colour for the direction at magnitude `max`, darkened beyond it; black
/// for unknown flow.
pub fn flow_colour(u: f32, v: f32, max: f32) -> [u8; 3] {
    if is_unknown(u, v) {
        return [0, 0, 0];
    }
    let m = u.hypot(v) / max;
    if m == 0.0 {
        return [255, 255, 255];
    }
    // Angle from +x, turning towards +y (clockwise on screen), in [0, 1).
    let turn = (v.atan2(u) / std::f32::consts::TAU).rem_euclid(1.0);
    let c = wheel_colour(turn * wheel_steps() as f32);
    c.map(|c| {
        let x = if m <= 1.0 {
            255.0 - m * (255.0 - c)
        } else {
            0.75 * c
        };
        x.round().clamp(0.0, 255.0) as u8
    })
}

/// The largest magnitude of the known vectors of `flow`, px (0 for none).
pub fn max_magnitude(flow: &Flow) -> f32 {
    flow.uv
        .chunks_exact(2)
        .filter(|p| !is_unknown(p[0], p[1]))
        .fold(0.0f32, |m, p| m.max(p[0].hypot(p[1])))
}

/// The colour map of `flow`, one pixel per vector. `max_magnitude` is the magnitude that gets
/// full saturation; `None` uses the flow's own largest known magnitude. Either is raised to at
/// least [`MIN_MAX_MAGNITUDE`].
pub fn flow_to_rgb(flow: &Flow, max_magnitude: Option<f32>) -> RgbImage {
    let max = max_magnitude
        .unwrap_or_else(|| self::max_magnitude(flow))
        .max(MIN_MAX_MAGNITUDE);
    let mut out = RgbImage::new(flow.width as u32, flow.height as u32);
    for (px, uv) in out.data.chunks_exact_mut(3).zip(flow.uv.chunks_exact(2)) {
        px.copy_from_slice(&flow_colour(uv[0], uv[1], max));
    }
    out
}

/// Background of the legend outside its disc.
const LEGEND_BACKGROUND: [u8; 3] = [235, 235, 235];

/// A `size x size` legend: a disc whose pixel at offset `(dx, dy)` from the centre shows the
/// colour of the flow `(dx, dy)` with the disc's radius as the maximum magnitude (white in the
/// middle, saturated on the rim), on a light grey square.
pub fn colour_wheel_legend(size: u32) -> RgbImage {
    let mut out = RgbImage::new(size, size);
    let c = (size as f32 - 1.0) / 2.0;
    let r = (size as f32 / 2.0 - 1.0).max(1.0);
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = (x as f32 - c, y as f32 - c);
            let colour = if dx.hypot(dy) <= r {
                flow_colour(dx, dy, r)
            } else {
                LEGEND_BACKGROUND
            };
            let i = ((y * size + x) * 3) as usize;
            out.data[i..i + 3].copy_from_slice(&colour);
        }
    }
    out
}

/// The magnitude-scale caption of a colour map: `"max 2.31 px"`.
pub fn magnitude_label(max: f32) -> String {
    format!("max {max:.2} px")
}

/// Hershey-simplex scale and stroke thickness for glyphs about `height` px tall.
fn text_style(height: f32) -> (f64, i32) {
    // Hershey simplex capitals are about 22 px tall at scale 1.
    let scale = (height / 22.0).max(0.2) as f64;
    (scale, ((height / 14.0).round() as i32).max(1))
}

/// The width in pixels of `text` as [`draw_text`] writes it at glyph height `height`.
pub fn text_width(text: &str, height: f32) -> Result<i32> {
    let (scale, thickness) = text_style(height);
    let mut baseline = 0;
    let size = imgproc::get_text_size(
        text,
        imgproc::FONT_HERSHEY_SIMPLEX,
        scale,
        thickness,
        &mut baseline,
    )?;
    Ok(size.width)
}

/// A copy of `image` with `text` written by OpenCV (Hershey simplex, anti-aliased), its
/// baseline starting at (`x`, `y`), glyphs about `height` px tall, in the RGB colour `rgb`.
pub fn draw_text(
    image: &RgbImage,
    text: &str,
    x: i32,
    y: i32,
    height: f32,
    rgb: [u8; 3],
) -> Result<RgbImage> {
    let mut mat = image.to_bgr_mat()?;
    let (scale, thickness) = text_style(height);
    let colour = Scalar::new(rgb[2] as f64, rgb[1] as f64, rgb[0] as f64, 0.0);
    imgproc::put_text(
        &mut mat,
        text,
        CvPoint::new(x, y),
        imgproc::FONT_HERSHEY_SIMPLEX,
        scale,
        colour,
        thickness,
        imgproc::LINE_AA,
        false,
    )?;
    RgbImage::from_bgr_mat(&mat)
}

/// The colour map of `flow` with its scale (the magnitude of full saturation) written in the
/// top-left corner.
pub fn colour_map_with_scale(flow: &Flow) -> Result<RgbImage> {
    let img = flow_to_rgb(flow, None);
    let h = (img.height as f32 / 24.0).clamp(10.0, 24.0);
    draw_text(
        &img,
        &magnitude_label(max_magnitude(flow)),
        4,
        (h * 1.4) as i32,
        h,
        [0, 0, 0],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(u: f32, v: f32) -> Flow {
        Flow {
            width: 1,
            height: 1,
            uv: vec![u, v],
        }
    }

    #[test]
    fn zero_flow_is_white_and_unknown_is_black() {
        let img = flow_to_rgb(&Flow::zeros(3, 2), None);
        assert!(img.data.iter().all(|&c| c == 255));
        let mut f = Flow::zeros(2, 1);
        f.uv = vec![f32::NAN, 0.0, 2e9, 1.0];
        let img = flow_to_rgb(&f, Some(1.0));
        assert_eq!(img.pixel(0, 0), [0, 0, 0]);
        assert_eq!(img.pixel(1, 0), [0, 0, 0]);
    }

    #[test]
    fn directions_follow_the_wheel() {
        // Right at full magnitude: the wheel's first colour, pure red.
        assert_eq!(flow_colour(1.0, 0.0, 1.0), [255, 0, 0]);
        // Left: half way round, step 27.5 of 55, in the cyan -> blue segment (steps 25-36):
        // 2.5 / 11 of the way from (0, 255, 255) towards (0, 0, 255).
        let g = (255.0 - 2.5 / 11.0 * 255.0f32).round() as u8;
        assert_eq!(flow_colour(-1.0, 0.0, 1.0), [0, g, 255]);
        // Down (+y, a quarter turn clockwise on screen): step 13.75, red -> yellow.
        let g = (13.75 / 15.0 * 255.0f32).round() as u8;
        assert_eq!(flow_colour(0.0, 1.0, 1.0), [255, g, 0]);
        // Up: step 41.25, blue -> magenta: 5.25 / 13 of the way to (255, 0, 255).
        let r = (5.25 / 13.0 * 255.0f32).round() as u8;
        assert_eq!(flow_colour(0.0, -1.0, 1.0), [r, 0, 255]);
        // Just short of a full turn meets red again, no seam.
        let near = flow_colour(1.0, -1e-4, 1.0);
        assert!(near[0] == 255 && near[1] == 0 && near[2] <= 1, "{near:?}");
    }

    #[test]
    fn magnitude_sets_saturation() {
        // Half the maximum to the right: half way from white to red.
        assert_eq!(flow_colour(0.5, 0.0, 1.0), [255, 128, 128]);
        assert_eq!(flow_colour(0.25, 0.0, 1.0), [255, 191, 191]);
        // Beyond the maximum: darkened wheel colour.
        assert_eq!(flow_colour(2.0, 0.0, 1.0), [191, 0, 0]);
        // None normalises by the flow's own largest vector.
        let mut f = Flow::zeros(2, 1);
        f.uv = vec![4.0, 0.0, 2.0, 0.0];
        let img = flow_to_rgb(&f, None);
        assert_eq!(img.pixel(0, 0), [255, 0, 0]);
        assert_eq!(img.pixel(1, 0), [255, 128, 128]);
        assert_eq!(flow_to_rgb(&f, Some(8.0)).pixel(0, 0), [255, 128, 128]);
        assert!((max_magnitude(&f) - 4.0).abs() < 1e-6);
        assert_eq!(flow_to_rgb(&one(0.0, 0.0), Some(0.0)).pixel(0, 0), [255; 3]);
    }

    #[test]
    fn legend_disc_is_white_in_the_middle_and_red_on_the_right() {
        let size = 65;
        let l = colour_wheel_legend(size);
        assert_eq!(l.pixel(32, 32), [255, 255, 255]);
        let right = l.pixel(63, 32);
        assert!(
            right[0] == 255 && right[1] < 20 && right[2] < 20,
            "{right:?}"
        );
        let left = l.pixel(1, 32);
        assert!(left[0] < 20 && left[2] == 255, "{left:?}");
        assert_eq!(l.pixel(0, 0), LEGEND_BACKGROUND);
    }

    #[test]
    fn text_is_drawn_where_asked() {
        assert_eq!(magnitude_label(2.3149), "max 2.31 px");
        let img = RgbImage::new(240, 30);
        let out = draw_text(&img, "max 2.31 px", 4, 22, 14.0, [255, 255, 255]).unwrap();
        let lit = |x0: u32, x1: u32| {
            (0..30)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| out.pixel(x, y)[0] > 128)
                .count()
        };
        assert!(lit(4, 60) > 20, "no text drawn");
        let width = text_width("max 2.31 px", 14.0).unwrap() as u32;
        assert!((60..200).contains(&width), "width {width}");
        assert!(
            lit(4 + width / 2, 4 + width) > 10,
            "text shorter than measured"
        );
        assert_eq!(
            lit(4 + width + 3, 240),
            0,
            "text spilled past its measured end"
        );
        // White on black keeps grey: the colour reaches every channel.
        let p = out.data.chunks_exact(3).find(|p| p[0] > 200).unwrap();
        assert!(p[1] > 200 && p[2] > 200);
    }
}
