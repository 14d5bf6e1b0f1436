//! The motion curves as a chart: time in seconds across, px up, one coloured line per curve,
//! the combined curve with its baseline and threshold, spotted intervals shaded (micro and
//! macro in two colours, blinks in grey with a cross at the apex, expressions with a triangle
//! over the apex), a legend and a title line.

use opencv::core::{Mat, Point as CvPoint, Rect, Scalar, Vector};
use opencv::imgproc;

use super::spotting::{Curve, SpotKind, Spotting};
use crate::error::{Error, Result};
use crate::flow::{draw_text, text_width};
use crate::media::RgbImage;

/// Colours, RGB.
const BACKGROUND: [u8; 3] = [255, 255, 255];
const GRID: [u8; 3] = [232, 232, 232];
const AXIS: [u8; 3] = [90, 90, 90];
const TEXT: [u8; 3] = [30, 30, 30];
const MICRO_FILL: [u8; 3] = [196, 232, 196];
const MACRO_FILL: [u8; 3] = [222, 206, 246];
const BLINK_FILL: [u8; 3] = [226, 226, 226];
const MICRO_MARK: [u8; 3] = [20, 120, 20];
const MACRO_MARK: [u8; 3] = [105, 55, 170];
const BLINK_MARK: [u8; 3] = [110, 110, 110];
const COMBINED: [u8; 3] = [0, 0, 0];
const BASELINE: [u8; 3] = [130, 130, 130];
const THRESHOLD: [u8; 3] = [215, 35, 35];
/// Line colours of the curves, in turn (no red: that is the threshold's).
const PALETTE: [[u8; 3]; 7] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [23, 190, 207],
];

/// Glyph heights of the title and of the other text, px.
const TITLE_HEIGHT: f32 = 14.0;
const LABEL_HEIGHT: f32 = 11.0;
/// Margins around the plot area, px.
const LEFT: i32 = 58;
const RIGHT: i32 = 18;
const BOTTOM: i32 = 42;
/// Smallest chart drawn.
const MIN_SIZE: (u32, u32) = (320, 200);

fn scalar(rgb: [u8; 3]) -> Scalar {
    Scalar::new(rgb[2] as f64, rgb[1] as f64, rgb[0] as f64, 0.0)
}

/// A straight line from `p` to `q`, 8-connected (crisp grid lines) unless `smooth`.
fn segment(
    mat: &mut Mat,
    p: CvPoint,
    q: CvPoint,
    rgb: [u8; 3],
    thickness: i32,
    smooth: bool,
) -> Result<()> {
    let line_type = if smooth {
        imgproc::LINE_AA
    } else {
        imgproc::LINE_8
    };
    imgproc::line(mat, p, q, scalar(rgb), thickness, line_type, 0)?;
    Ok(())
}

/// A text to write once the shapes are drawn: text, baseline origin, height, colour.
type Label = (String, i32, i32, f32, [u8; 3]);

/// Where things go: the plot area in pixels and the data ranges it shows.
#[derive(Debug, Clone, Copy)]
struct Axes {
    left: i32,
    top: i32,
    right: i32,
    bottom: i32,
    /// Frames 0..=last across.
    last: f32,
    /// Values lo..=hi up, with a tick at every multiple of `step`.
    lo: f32,
    hi: f32,
    step: f32,
}

impl Axes {
    fn x(&self, frame: f32) -> i32 {
        let share = if self.last > 0.0 {
            frame / self.last
        } else {
            0.0
        };
        self.left + (share * (self.right - self.left) as f32).round() as i32
    }

    fn y(&self, value: f32) -> i32 {
        let share = (value - self.lo) / (self.hi - self.lo);
        self.bottom - (share * (self.bottom - self.top) as f32).round() as i32
    }
}

/// A round tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
fn nice_step(span: f32, count: f32) -> f32 {
    let raw = (span / count).max(1e-6);
    let power = 10f32.powf(raw.log10().floor());
    let m = raw / power;
    power
        * if m <= 1.0 {
            1.0
        } else if m <= 2.0 {
            2.0
        } else if m <= 5.0 {
            5.0
        } else {
            10.0
        }
}

/// Decimals that show `step` exactly enough.
fn decimals(step: f32) -> usize {
    (-step.log10().floor()).max(0.0) as usize
}

/// One legend entry: its label and how its swatch is drawn.
enum Swatch {
    Line([u8; 3], i32),
    Dashed([u8; 3]),
    Fill([u8; 3]),
}

/// The legend laid out in rows from `y`; returns the swatches with their places and the
/// y below the last row.
fn legend_layout(
    entries: &[(String, Swatch)],
    width: i32,
    y: i32,
) -> Result<(Vec<(i32, i32)>, i32)> {
    let (swatch, gap, row) = (22, 14, 18);
    let mut places = Vec::with_capacity(entries.len());
    let (mut x, mut y) = (LEFT, y);
    for (label, _) in entries {
        let w = swatch + 5 + text_width(label, LABEL_HEIGHT)?;
        if x + w > width - RIGHT && x > LEFT {
            x = LEFT;
            y += row;
        }
        places.push((x, y));
        x += w + gap;
    }
    Ok((places, y + row))
}

fn draw_legend(
    mat: &mut Mat,
    labels: &mut Vec<Label>,
    entries: &[(String, Swatch)],
    places: &[(i32, i32)],
) -> Result<()> {
    for ((label, swatch), &(x, y)) in entries.iter().zip(places) {
        let mid = y - 4;
        match *swatch {
            Swatch::Line(rgb, thickness) => segment(
                mat,
                CvPoint::new(x, mid),
                CvPoint::new(x + 22, mid),
                rgb,
                thickness,
                true,
            )?,
            Swatch::Dashed(rgb) => {
                for k in 0..3 {
                    let (p, q) = (
                        CvPoint::new(x + 8 * k, mid),
                        CvPoint::new(x + 8 * k + 5, mid),
                    );
                    segment(mat, p, q, rgb, 1, false)?;
                }
            }
            Swatch::Fill(rgb) => imgproc::rectangle(
                mat,
                Rect::new(x, y - 10, 22, 12),
                scalar(rgb),
                -1,
                imgproc::LINE_8,
                0,
            )?,
        }
        labels.push((label.clone(), x + 27, y, LABEL_HEIGHT, TEXT));
    }
    Ok(())
}

/// The legend's entries: the curves, then the combined curve, its lines and the shadings.
fn legend_entries(curves: &[Curve]) -> Vec<(String, Swatch)> {
    let mut entries: Vec<(String, Swatch)> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), Swatch::Line(PALETTE[i % PALETTE.len()], 1)))
        .collect();
    entries.extend([
        ("combined".to_string(), Swatch::Line(COMBINED, 2)),
        ("baseline".to_string(), Swatch::Dashed(BASELINE)),
        ("threshold".to_string(), Swatch::Dashed(THRESHOLD)),
        ("micro".to_string(), Swatch::Fill(MICRO_FILL)),
        ("macro".to_string(), Swatch::Fill(MACRO_FILL)),
        ("blink".to_string(), Swatch::Fill(BLINK_FILL)),
    ]);
    entries
}

/// The plot area and ranges for `curves` and `result` in a `width` x `height` chart whose
/// plot area starts at `top`.
fn axes(curves: &[Curve], result: &Spotting, width: u32, height: u32, top: i32) -> Axes {
    let threshold = result.baseline.iter().map(|b| b + result.threshold);
    let values = curves
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .chain(result.combined.iter().copied())
        .chain(result.baseline.iter().copied())
        .chain(threshold);
    let (mut lo, mut hi) = values.fold((0.0f32, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= lo {
        hi = lo + 1.0;
    }
    // A little room below and above (so the top rows stay clear of the lines).
    let span = hi - lo;
    lo -= 0.03 * span;
    hi += 0.06 * span;
    let step = nice_step(hi - lo, 6.0);
    let n = curves.first().map_or(0, |c| c.values.len());
    Axes {
        left: LEFT,
        top,
        right: width as i32 - RIGHT,
        bottom: height as i32 - BOTTOM,
        last: n.saturating_sub(1) as f32,
        lo,
        hi,
        step,
    }
}

/// A line through `values`, the first at frame `first`.
fn polyline(
    mat: &mut Mat,
    a: &Axes,
    first: usize,
    values: &[f32],
    rgb: [u8; 3],
    thickness: i32,
) -> Result<()> {
    let points: Vector<CvPoint> = values
        .iter()
        .enumerate()
        .map(|(t, &v)| CvPoint::new(a.x((first + t) as f32), a.y(v)))
        .collect();
    let lines: Vector<Vector<CvPoint>> = std::iter::once(points).collect();
    imgproc::polylines(
        mat,
        &lines,
        false,
        scalar(rgb),
        thickness,
        imgproc::LINE_AA,
        0,
    )?;
    Ok(())
}

/// A dashed line through `values`: pieces of about 6 px on, 4 px off.
fn dashed(mat: &mut Mat, a: &Axes, values: &[f32], rgb: [u8; 3]) -> Result<()> {
    let frames_per_px = a.last / (a.right - a.left).max(1) as f32;
    let (on, period) = (
        ((6.0 * frames_per_px).ceil() as usize).max(1),
        ((10.0 * frames_per_px).ceil() as usize).max(2),
    );
    for start in (0..values.len()).step_by(period) {
        let end = (start + on + 1).min(values.len());
        if end - start >= 2 {
            polyline(mat, a, start, &values[start..end], rgb, 1)?;
        }
    }
    Ok(())
}

/// The chart of `curves` (the ones given to [`super::spotting::spot`]) and what was spotted in
/// them, `width` x `height` px; `fps` sets the time axis.
pub fn plot_spotting(
    curves: &[Curve],
    result: &Spotting,
    fps: f32,
    width: u32,
    height: u32,
) -> Result<RgbImage> {
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
        return Err(Error::Internal(format!(
            "a spotting chart of {width}x{height} px is too small to read; use at least {}x{}",
            MIN_SIZE.0, MIN_SIZE.1
        )));
    }
    if !(fps.is_finite() && fps > 0.0) {
        return Err(Error::Internal(format!(
            "chart fps is {fps}; it must be a positive number (frames per second of the clip)"
        )));
    }
    let n = result.combined.len();
    if let Some(c) = curves.iter().find(|c| c.values.len() != n) {
        return Err(Error::Internal(format!(
            "curve {:?} has {} frames but the spotting result has {n}; plot the curves that \
             were spotted",
            c.name,
            c.values.len()
        )));
    }
    let mut labels: Vec<Label> = Vec::new();
    let count = |kind| result.spots.iter().filter(|s| s.kind == kind).count();
    let title = format!(
        "spotting: {} micro, {} macro, {} blinks | noise {:.3} px, threshold {:.2} px | \
         {:.1} s at {fps:.0} fps",
        count(SpotKind::Micro),
        count(SpotKind::Macro),
        result.blinks.len(),
        result.noise,
        result.threshold,
        n as f32 / fps,
    );
    labels.push((title, LEFT, 20, TITLE_HEIGHT, TEXT));
    let entries = legend_entries(curves);
    let (places, below) = legend_layout(&entries, width as i32, 42)?;
    let a = axes(curves, result, width, height, below + 4);
    if a.bottom - a.top < 40 {
        return Err(Error::Internal(format!(
            "a spotting chart of {width}x{height} px leaves no room to plot {} curves; make it \
             taller",
            curves.len()
        )));
    }

    let mut mat = RgbImage {
        width,
        height,
        data: BACKGROUND.repeat(width as usize * height as usize),
    }
    .to_bgr_mat()?;
    draw_legend(&mut mat, &mut labels, &entries, &places)?;

    // Shading first, so grid and curves stay visible over it.
    let shaded = result
        .spots
        .iter()
        .map(|s| {
            let fill = match s.kind {
                SpotKind::Micro => MICRO_FILL,
                SpotKind::Macro => MACRO_FILL,
            };
            (s, fill)
        })
        .chain(result.blinks.iter().map(|s| (s, BLINK_FILL)));
    for (s, fill) in shaded {
        let (x0, x1) = (a.x(s.onset as f32), a.x(s.offset as f32));
        let rect = Rect::new(x0, a.top + 1, (x1 - x0).max(1), a.bottom - a.top - 1);
        imgproc::rectangle(&mut mat, rect, scalar(fill), -1, imgproc::LINE_8, 0)?;
    }

    // Grid, ticks and tick labels: time in seconds across, px up.
    let seconds = a.last / fps;
    let t_step = nice_step(seconds, ((a.right - a.left) as f32 / 90.0).max(2.0));
    for k in 0..=(seconds / t_step + 1e-3).floor() as usize {
        let t = k as f32 * t_step;
        let x = a.x(t * fps);
        let grid = (CvPoint::new(x, a.top), CvPoint::new(x, a.bottom));
        segment(&mut mat, grid.0, grid.1, GRID, 1, false)?;
        let tick = (CvPoint::new(x, a.bottom), CvPoint::new(x, a.bottom + 4));
        segment(&mut mat, tick.0, tick.1, AXIS, 1, false)?;
        let text = format!("{t:.*}", decimals(t_step));
        let w = text_width(&text, LABEL_HEIGHT)?;
        labels.push((text, x - w / 2, a.bottom + 18, LABEL_HEIGHT, TEXT));
    }
    let first_tick = (a.lo / a.step).ceil() as i32;
    let last_tick = (a.hi / a.step).floor() as i32;
    for k in first_tick..=last_tick {
        let v = k as f32 * a.step;
        let y = a.y(v);
        let grid = (CvPoint::new(a.left, y), CvPoint::new(a.right, y));
        segment(&mut mat, grid.0, grid.1, GRID, 1, false)?;
        let tick = (CvPoint::new(a.left - 4, y), CvPoint::new(a.left, y));
        segment(&mut mat, tick.0, tick.1, AXIS, 1, false)?;
        let text = format!("{v:.*}", decimals(a.step));
        let w = text_width(&text, LABEL_HEIGHT)?;
        labels.push((text, a.left - 8 - w, y + 5, LABEL_HEIGHT, TEXT));
    }
    let frame = Rect::new(a.left, a.top, a.right - a.left, a.bottom - a.top);
    imgproc::rectangle(&mut mat, frame, scalar(AXIS), 1, imgproc::LINE_8, 0)?;
    let axis_title = "time (s)";
    let w = text_width(axis_title, LABEL_HEIGHT)?;
    labels.push((
        axis_title.into(),
        (a.left + a.right - w) / 2,
        a.bottom + 36,
        LABEL_HEIGHT,
        TEXT,
    ));
    labels.push(("px".into(), 8, (a.top + a.bottom) / 2, LABEL_HEIGHT, TEXT));

    // Curves, then the combined curve on top with its baseline and threshold.
    if n >= 2 {
        for (i, c) in curves.iter().enumerate() {
            polyline(&mut mat, &a, 0, &c.values, PALETTE[i % PALETTE.len()], 1)?;
        }
        dashed(&mut mat, &a, &result.baseline, BASELINE)?;
        let threshold: Vec<f32> = result
            .baseline
            .iter()
            .map(|b| b + result.threshold)
            .collect();
        dashed(&mut mat, &a, &threshold, THRESHOLD)?;
        polyline(&mut mat, &a, 0, &result.combined, COMBINED, 2)?;
    }

    // Apex marks: a triangle over each expression's apex, a cross on each blink's.
    for s in &result.spots {
        let (x, y) = (a.x(s.apex as f32), a.y(result.combined[s.apex]) - 5);
        let rgb = match s.kind {
            SpotKind::Micro => MICRO_MARK,
            SpotKind::Macro => MACRO_MARK,
        };
        let triangle: Vector<CvPoint> = [
            CvPoint::new(x, y),
            CvPoint::new(x - 5, y - 9),
            CvPoint::new(x + 5, y - 9),
        ]
        .into_iter()
        .collect();
        let shapes: Vector<Vector<CvPoint>> = std::iter::once(triangle).collect();
        imgproc::fill_poly(
            &mut mat,
            &shapes,
            scalar(rgb),
            imgproc::LINE_AA,
            0,
            CvPoint::new(0, 0),
        )?;
    }
    for s in &result.blinks {
        let (x, y) = (a.x(s.apex as f32), a.y(result.combined[s.apex]));
        for (dx, dy) in [(4, 4), (4, -4)] {
            let (p, q) = (CvPoint::new(x - dx, y - dy), CvPoint::new(x + dx, y + dy));
            segment(&mut mat, p, q, BLINK_MARK, 2, true)?;
        }
    }

    let mut image = RgbImage::from_bgr_mat(&mat)?;
    for (text, x, y, h, rgb) in labels {
        image = draw_text(&image, &text, x, y, h, rgb)?;
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::super::spotting::{spot, SpotOptions};
    use super::*;
    use crate::synth::Profile;

    /// 20 s at 30 fps: a micro bump (0.3 s) at 5 s on the brows, a macro one (2 s) at 12 s on
    /// the mouth, a blink at 9 s leaking into the brows.
    fn case() -> (Vec<Curve>, Vec<f32>) {
        let n = 600;
        let bump = |t: usize, on: f32, apex: f32, off: f32, amp: f32| {
            amp * Profile::new(on, apex, off).unwrap().intensity(t as f32)
        };
        let brows = (0..n)
            .map(|t| 0.3 + bump(t, 150.0, 154.0, 159.0, 0.8) + bump(t, 270.0, 273.0, 276.0, 0.9))
            .collect();
        let mouth = (0..n)
            .map(|t| 0.2 + bump(t, 360.0, 384.0, 420.0, 4.0))
            .collect();
        let blink = (0..n).map(|t| bump(t, 270.0, 273.0, 276.0, 6.0)).collect();
        let curves = vec![
            Curve {
                name: "brows".into(),
                values: brows,
            },
            Curve {
                name: "mouth".into(),
                values: mouth,
            },
        ];
        (curves, blink)
    }

    #[test]
    fn intervals_are_shaded_in_their_colours() {
        let (curves, blink) = case();
        let r = spot(&curves, Some(&blink), &SpotOptions::default()).unwrap();
        let kinds: Vec<_> = r.spots.iter().map(|s| (s.kind, s.apex)).collect();
        assert_eq!(kinds, [(SpotKind::Micro, 154), (SpotKind::Macro, 384)]);
        assert_eq!(r.blinks.len(), 1);
        let image = plot_spotting(&curves, &r, 30.0, 900, 360).unwrap();
        assert_eq!((image.width, image.height), (900, 360));
        let (_, below) = legend_layout(&legend_entries(&curves), 900, 42).unwrap();
        let a = axes(&curves, &r, 900, 360, below + 4);
        // Along a row just under the top of the plot area (above every curve), the columns
        // inside each interval have its fill, bar the odd grid line; columns outside have none.
        let y = (a.top + 3) as u32;
        let share = |onset: usize, offset: usize, rgb: [u8; 3]| {
            let (x0, x1) = (a.x(onset as f32) + 1, a.x(offset as f32) - 1);
            let hits = (x0..=x1)
                .filter(|&x| image.pixel(x as u32, y) == rgb)
                .count();
            hits as f32 / (x1 - x0 + 1) as f32
        };
        let (micro, mac, b) = (&r.spots[0], &r.spots[1], &r.blinks[0]);
        assert!(share(micro.onset, micro.offset, MICRO_FILL) >= 0.75);
        assert!(share(mac.onset, mac.offset, MACRO_FILL) >= 0.9);
        assert!(share(b.onset, b.offset, BLINK_FILL) >= 0.75);
        assert_eq!(share(10, 140, MICRO_FILL), 0.0);
        assert_eq!(share(10, 140, BACKGROUND) + share(10, 140, GRID), 1.0);
        // The combined curve passes through the macro apex, drawn in black.
        let apex = (
            a.x(mac.apex as f32) as u32,
            a.y(r.combined[mac.apex]) as u32,
        );
        let dark = (0..3).any(|d| image.pixel(apex.0, apex.1 + d - 1).iter().all(|&c| c < 80));
        assert!(dark);
        assert!(plot_spotting(&curves, &r, 30.0, 100, 100).is_err());
        assert!(plot_spotting(&curves[..1], &r, 0.0, 900, 360).is_err());
    }

    /// Writes the chart of a synthetic long video to /tmp/spot_example.png (run with
    /// `--ignored` to look at it).
    #[test]
    #[ignore]
    fn write_example_chart() {
        let v = super::super::spotting::tests::synth_video(100, true);
        let r = spot(&v.curves, Some(&v.blink), &SpotOptions::default()).unwrap();
        let image = plot_spotting(&v.curves, &r, 30.0, 1400, 520).unwrap();
        crate::media::write_image(std::path::Path::new("/tmp/spot_example.png"), &image).unwrap();
    }
}
