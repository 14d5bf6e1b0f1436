//! Contact sheets for checking SynthME motion by eye: one image with the onset frame, the
//! apex frame, their magnified difference and the ground-truth flow's colour map side by
//! side, each labelled, under a title bar.
//!
//! Layout (all in sheet pixels): a title bar of [`TITLE_HEIGHT`], a label row of
//! [`LABEL_HEIGHT`], the four panels of `scale * width x scale * height` separated and framed
//! by [`PANEL_GAP`], and a footer of [`FOOTER_HEIGHT`] with the numbers that read each panel
//! (the upscaling, the difference gain `k`, the flow's colour wheel and maximum magnitude).
//! Panels are the frames themselves, upscaled by the integer factor `scale` with
//! nearest-neighbour sampling so that a one-pixel motion shows as a `scale`-pixel step;
//! `scale` is the smallest integer that brings both sides to at least [`MIN_PANEL_SIDE`].

use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::flow::{
    colour_wheel_legend, draw_text, flow_to_rgb, magnitude_label, max_magnitude, text_width,
};
use crate::media::RgbImage;

/// Panels smaller than this on either side are upscaled until both sides reach it.
pub const MIN_PANEL_SIDE: u32 = 256;
/// Height of the title bar.
pub const TITLE_HEIGHT: u32 = 36;
/// Height of the row of panel labels under the title.
pub const LABEL_HEIGHT: u32 = 26;
/// Height of the footer under the panels (the legend disc and the numbers).
pub const FOOTER_HEIGHT: u32 = 84;
/// White space between panels and at the sheet's left and right edges.
pub const PANEL_GAP: u32 = 8;
/// Side of the colour-wheel legend in the footer (odd, so one pixel sits at its centre).
pub const LEGEND_SIZE: u32 = 71;
/// The magnified difference maps the largest luminance change to this distance from grey.
pub const DIFFERENCE_RANGE: f32 = 127.0;

const BACKGROUND: [u8; 3] = [255, 255, 255];
const TITLE_BACKGROUND: [u8; 3] = [40, 40, 40];
const TEXT: [u8; 3] = [20, 20, 20];

/// Where everything sits on a contact sheet for `width x height` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetLayout {
    /// The integer upscaling of the frames.
    pub scale: u32,
    pub panel_width: u32,
    pub panel_height: u32,
    /// The row where every panel starts.
    pub panel_top: u32,
    /// The sheet's size.
    pub width: u32,
    pub height: u32,
}

impl SheetLayout {
    /// The layout for frames of `width x height` (both > 0).
    pub fn new(width: u32, height: u32) -> SheetLayout {
        let side = width.min(height).max(1);
        let scale = MIN_PANEL_SIDE.div_ceil(side).max(1);
        let (panel_width, panel_height) = (width * scale, height * scale);
        SheetLayout {
            scale,
            panel_width,
            panel_height,
            panel_top: TITLE_HEIGHT + LABEL_HEIGHT,
            width: 4 * panel_width + 5 * PANEL_GAP,
            height: TITLE_HEIGHT + LABEL_HEIGHT + panel_height + FOOTER_HEIGHT,
        }
    }

    /// The first column of panel `i` (0 onset, 1 apex, 2 difference, 3 flow).
    pub fn panel_left(&self, i: u32) -> u32 {
        PANEL_GAP + i * (self.panel_width + PANEL_GAP)
    }
}

/// `img` upscaled by the integer factor `scale`, nearest neighbour: each pixel becomes a
/// `scale x scale` block.
pub fn upscale(img: &RgbImage, scale: u32) -> RgbImage {
    let s = scale.max(1);
    let mut out = RgbImage::new(img.width * s, img.height * s);
    for y in 0..out.height {
        for x in 0..out.width {
            let p = img.pixel(x / s, y / s);
            let i = ((y * out.width + x) * 3) as usize;
            out.data[i..i + 3].copy_from_slice(&p);
        }
    }
    out
}

/// Copies `src` into `dst` with its top-left corner at (`left`, `top`), clipped to `dst`.
fn paste(dst: &mut RgbImage, src: &RgbImage, left: u32, top: u32) {
    for y in 0..src.height.min(dst.height.saturating_sub(top)) {
        let w = src.width.min(dst.width.saturating_sub(left)) as usize;
        let s = (y * src.width) as usize * 3;
        let d = ((top + y) * dst.width + left) as usize * 3;
        dst.data[d..d + 3 * w].copy_from_slice(&src.data[s..s + 3 * w]);
    }
}

/// Fills the rectangle at (`left`, `top`) of `w x h` with `rgb`, clipped to `dst`.
fn fill(dst: &mut RgbImage, left: u32, top: u32, w: u32, h: u32, rgb: [u8; 3]) {
    for y in top..(top + h).min(dst.height) {
        for x in left..(left + w).min(dst.width) {
            let i = ((y * dst.width + x) * 3) as usize;
            dst.data[i..i + 3].copy_from_slice(&rgb);
        }
    }
}

/// Rec. 601 luminance of an RGB pixel.
fn luminance(p: &[u8]) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// The magnified luminance difference `128 + k (L(apex) - L(onset))` as a grey image, and the
/// gain `k`, chosen so the largest absolute difference reaches [`DIFFERENCE_RANGE`] (1 when
/// the frames are identical).
pub fn magnified_difference(onset: &RgbImage, apex: &RgbImage) -> Result<(RgbImage, f32)> {
    if (onset.width, onset.height) != (apex.width, apex.height) {
        return Err(Error::Internal(format!(
            "difference of a {}x{} onset and a {}x{} apex: the frames must have one size",
            onset.width, onset.height, apex.width, apex.height
        )));
    }
    let diff: Vec<f32> = onset
        .data
        .chunks_exact(3)
        .zip(apex.data.chunks_exact(3))
        .map(|(a, b)| luminance(b) - luminance(a))
        .collect();
    let largest = diff.iter().fold(0.0f32, |m, d| m.max(d.abs()));
    let k = if largest > 0.0 {
        DIFFERENCE_RANGE / largest
    } else {
        1.0
    };
    let mut out = RgbImage::new(onset.width, onset.height);
    for (px, d) in out.data.chunks_exact_mut(3).zip(&diff) {
        let g = (128.0 + k * d).round().clamp(0.0, 255.0) as u8;
        px.copy_from_slice(&[g, g, g]);
    }
    Ok((out, k))
}

/// A contact sheet of one onset -> apex pair with the ground-truth `flow` from onset to apex
/// (see the module doc for the layout). The frames and the flow must have one size.
pub fn contact_sheet(
    onset: &RgbImage,
    apex: &RgbImage,
    flow: &Flow,
    title: &str,
) -> Result<RgbImage> {
    let (w, h) = (onset.width, onset.height);
    if w == 0 || h == 0 || (flow.width, flow.height) != (w as usize, h as usize) {
        return Err(Error::Internal(format!(
            "contact sheet: onset {w}x{h} and flow {}x{} must have one, non-zero size",
            flow.width, flow.height
        )));
    }
    let (difference, k) = magnified_difference(onset, apex)?;
    let max = max_magnitude(flow);
    let colours = flow_to_rgb(flow, None);
    let layout = SheetLayout::new(w, h);

    let mut sheet = RgbImage::new(layout.width, layout.height);
    fill(&mut sheet, 0, 0, layout.width, layout.height, BACKGROUND);
    fill(
        &mut sheet,
        0,
        0,
        layout.width,
        TITLE_HEIGHT,
        TITLE_BACKGROUND,
    );
    let panels = [onset, apex, &difference, &colours];
    for (i, panel) in panels.iter().enumerate() {
        paste(
            &mut sheet,
            &upscale(panel, layout.scale),
            layout.panel_left(i as u32),
            layout.panel_top,
        );
    }
    let mut sheet = draw_text(
        &sheet,
        title,
        PANEL_GAP as i32,
        (TITLE_HEIGHT as i32 + 16) / 2 + 1,
        16.0,
        [255, 255, 255],
    )?;
    let labels = [
        "onset".to_string(),
        "apex".to_string(),
        format!("difference x {k:.1}"),
        "ground-truth flow".to_string(),
    ];
    let label_base = (TITLE_HEIGHT + LABEL_HEIGHT - 8) as i32;
    for (i, label) in labels.iter().enumerate() {
        let x = layout.panel_left(i as u32) as i32;
        sheet = draw_text(&sheet, label, x, label_base, 14.0, TEXT)?;
    }
    let footer = layout.panel_top + layout.panel_height;
    let line = |n: i32| (footer as i32) + 8 + 20 * n + 12;
    let size_note = format!("{w}x{h} px, shown x{}", layout.scale);
    sheet = draw_text(
        &sheet,
        &size_note,
        layout.panel_left(0) as i32,
        line(0),
        12.0,
        TEXT,
    )?;
    let gain_notes = [
        "grey 128 + k (apex - onset)",
        &format!("luminance, k = {k:.2}"),
    ];
    for (n, note) in gain_notes.iter().enumerate() {
        let x = layout.panel_left(2) as i32;
        sheet = draw_text(&sheet, note, x, line(n as i32), 12.0, TEXT)?;
    }
    let legend_left = layout.panel_left(3);
    paste(
        &mut sheet,
        &colour_wheel_legend(LEGEND_SIZE),
        legend_left,
        footer + 6,
    );
    let scale_note = magnitude_label(max);
    let text_left = (legend_left + LEGEND_SIZE + 10) as i32;
    let room = (layout.panel_left(3) + layout.panel_width) as i32 - text_left;
    let height = if text_width(&scale_note, 14.0)? <= room {
        14.0
    } else {
        10.0
    };
    sheet = draw_text(&sheet, &scale_note, text_left, line(1), height, TEXT)?;
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32, shift: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                let v = ((x + shift) * 255 / (w + shift)) as u8;
                img.data[i..i + 3].copy_from_slice(&[v, (y * 255 / h) as u8, 90]);
            }
        }
        img
    }

    #[test]
    fn layout_upscales_small_frames_to_the_minimum_side() {
        let l = SheetLayout::new(100, 120);
        assert_eq!(l.scale, 3);
        assert_eq!((l.panel_width, l.panel_height), (300, 360));
        assert_eq!(l.width, 4 * 300 + 5 * PANEL_GAP);
        assert_eq!(l.height, TITLE_HEIGHT + LABEL_HEIGHT + 360 + FOOTER_HEIGHT);
        assert_eq!(SheetLayout::new(256, 300).scale, 1);
        assert_eq!(SheetLayout::new(300, 255).scale, 2);
        assert_eq!(l.panel_left(0), PANEL_GAP);
        assert_eq!(l.panel_left(2), PANEL_GAP + 2 * (300 + PANEL_GAP));
    }

    #[test]
    fn upscale_repeats_pixels_in_blocks() {
        let img = gradient(3, 2, 0);
        let up = upscale(&img, 4);
        assert_eq!((up.width, up.height), (12, 8));
        assert_eq!(up.pixel(7, 5), img.pixel(1, 1));
        assert_eq!(up.pixel(8, 0), img.pixel(2, 0));
        assert_eq!(up.pixel(3, 3), img.pixel(0, 0));
    }

    #[test]
    fn difference_fills_the_range_and_reports_its_gain() {
        let onset = gradient(40, 30, 0);
        let mut apex = onset.clone();
        // One pixel brighter by 10 in every channel: luminance +10, the largest change.
        let i = (5 * 40 + 7) * 3;
        for c in &mut apex.data[i..i + 3] {
            *c += 10;
        }
        let (d, k) = magnified_difference(&onset, &apex).unwrap();
        assert!((k - 12.7).abs() < 1e-3, "k {k}");
        assert_eq!(d.pixel(7, 5), [255, 255, 255]);
        assert_eq!(d.pixel(8, 5), [128, 128, 128]);
        let (same, k1) = magnified_difference(&onset, &onset).unwrap();
        assert_eq!(k1, 1.0);
        assert!(same.data.iter().all(|&g| g == 128));
        assert!(magnified_difference(&onset, &gradient(30, 40, 0)).is_err());
    }

    #[test]
    fn sheet_has_the_panels_where_the_layout_says() {
        let (w, h) = (64u32, 48u32);
        let onset = gradient(w, h, 0);
        let apex = gradient(w, h, 3);
        let mut flow = Flow::zeros(w as usize, h as usize);
        for p in flow.uv.chunks_exact_mut(2) {
            p[0] = 1.5;
        }
        // One pixel moving twice as far sets the maximum.
        flow.uv[0] = 3.0;
        let sheet = contact_sheet(&onset, &apex, &flow, "AU12 test").unwrap();
        let l = SheetLayout::new(w, h);
        assert_eq!(l.scale, 6);
        assert_eq!((sheet.width, sheet.height), (l.width, l.height));
        let crop = |i: u32| {
            let mut out = RgbImage::new(l.panel_width, l.panel_height);
            for y in 0..l.panel_height {
                for x in 0..l.panel_width {
                    let p = sheet.pixel(l.panel_left(i) + x, l.panel_top + y);
                    let j = ((y * l.panel_width + x) * 3) as usize;
                    out.data[j..j + 3].copy_from_slice(&p);
                }
            }
            out
        };
        assert_eq!(crop(0), upscale(&onset, 6));
        assert_eq!(crop(1), upscale(&apex, 6));
        let (diff, _) = magnified_difference(&onset, &apex).unwrap();
        assert_eq!(crop(2), upscale(&diff, 6));
        // Flow to the right at half the maximum: half-saturated red; the maximum pixel is red.
        let f = crop(3);
        assert_eq!(f.pixel(100, 100), [255, 128, 128]);
        assert_eq!(f.pixel(0, 0), [255, 0, 0]);
        // The title bar is dark with light text on it; the gaps stay white.
        assert_eq!(sheet.pixel(sheet.width - 2, 2), TITLE_BACKGROUND);
        let bright = (0..TITLE_HEIGHT)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| sheet.pixel(x, y)[0] > 200)
            .count();
        assert!(bright > 30, "title text missing ({bright} bright pixels)");
        assert_eq!(
            sheet.pixel(l.panel_left(1) - 1, l.panel_top + 10),
            BACKGROUND
        );
        // The legend sits in the footer under the flow panel: white at its centre.
        let c = LEGEND_SIZE / 2;
        let footer = l.panel_top + l.panel_height;
        assert_eq!(sheet.pixel(l.panel_left(3) + c, footer + 6 + c), [255; 3]);
        let red = sheet.pixel(l.panel_left(3) + LEGEND_SIZE - 3, footer + 6 + c);
        assert!(red[0] > 240 && red[1] < 40, "{red:?}");
    }

    #[test]
    fn sheet_refuses_mismatched_sizes() {
        let img = gradient(20, 20, 0);
        assert!(contact_sheet(&img, &img, &Flow::zeros(21, 20), "x").is_err());
        assert!(contact_sheet(&img, &gradient(20, 21, 0), &Flow::zeros(20, 20), "x").is_err());
    }
}
