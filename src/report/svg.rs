//! Inline SVG charts: the spotting curve with its intervals shaded, and a clip's timeline
//! with the answer's intervals. Drawn as markup rather than PNG so they stay sharp at any zoom
//! and their marks carry tooltips. Only numbers go into this markup, never trace text.

use std::fmt::Write;

/// An expression interval in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
}

/// The drawing's coordinate system (the viewBox); the page scales it to the card's width.
const WIDTH: f64 = 720.0;
const CURVE_HEIGHT: f64 = 200.0;
const TIMELINE_HEIGHT: f64 = 46.0;
/// Plot margins inside the viewBox: room for the value labels left, frame labels below.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// Maps frames to x between `LEFT` and `WIDTH - RIGHT`.
struct FrameAxis {
    first: f64,
    last: f64,
}

impl FrameAxis {
    fn x(&self, frame: f64) -> f64 {
        let range = (self.last - self.first).max(1.0);
        LEFT + (frame - self.first) / range * (WIDTH - LEFT - RIGHT)
    }

    /// Tick frames at a round step, about eight of them over the range.
    fn ticks(&self) -> Vec<usize> {
        let range = (self.last - self.first).max(1.0);
        let step = [1, 2, 5]
            .iter()
            .flat_map(|m| (0..7).map(move |e| m * 10usize.pow(e)))
            .filter(|s| range / *s as f64 <= 8.0)
            .min()
            .unwrap_or(1);
        let start = (self.first as usize).div_ceil(step) * step;
        (start..=self.last as usize).step_by(step).collect()
    }
}

/// The motion curve (`values[i]` at frame `frames[i]`) with `spans` shaded and each apex
/// marked; `None` when there is nothing to draw.
pub fn curve(frames: &[usize], values: &[f32], spans: &[Span]) -> Option<String> {
    let points: Vec<(f64, f64)> = frames
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_finite())
        .map(|(f, v)| (*f as f64, f64::from(*v)))
        .collect();
    let first = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    if points.len() < 2 || first >= last {
        return None;
    }
    let axis = FrameAxis { first, last };
    let top = nice_ceiling(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let plot_bottom = CURVE_HEIGHT - BOTTOM;
    let y = |v: f64| plot_bottom - v.max(0.0) / top * (plot_bottom - TOP);

    let mut svg = open(CURVE_HEIGHT, "motion curve over the clip's frames");
    for v in [0.0, top / 2.0, top] {
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            number(v),
        );
    }
    for s in spans {
        shade(&mut svg, &axis, s, TOP, plot_bottom);
    }
    let line: Vec<String> = points
        .iter()
        .map(|(f, v)| format!("{:.1},{:.1}", axis.x(*f), y(*v)))
        .collect();
    let _ = write!(
        svg,
        r#"<polyline class="line" points="{}"/>"#,
        line.join(" ")
    );
    frame_ticks(&mut svg, &axis, plot_bottom);
    svg.push_str("</svg>");
    Some(svg)
}

/// The clip from its first to its last frame, `spans` shaded, each apex marked.
pub fn timeline(frames: usize, spans: &[Span]) -> String {
    let axis = FrameAxis {
        first: 0.0,
        last: frames.saturating_sub(1) as f64,
    };
    let bottom = TIMELINE_HEIGHT - BOTTOM;
    let mut svg = open(TIMELINE_HEIGHT, "the clip's frames with the expressions");
    let _ = write!(
        svg,
        r#"<rect class="track" x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}"/>"#,
        WIDTH - LEFT - RIGHT,
        bottom - TOP
    );
    for s in spans {
        shade(&mut svg, &axis, s, TOP, bottom);
    }
    frame_ticks(&mut svg, &axis, bottom);
    svg.push_str("</svg>");
    svg
}

fn open(height: f64, label: &str) -> String {
    format!(r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{label}">"#)
}

/// A span's band from onset to offset with a line at its apex, between `y0` and `y1`.
fn shade(svg: &mut String, axis: &FrameAxis, s: &Span, y0: f64, y1: f64) {
    let (x0, x1) = (axis.x(s.onset as f64), axis.x(s.offset as f64));
    let xa = axis.x(s.apex as f64);
    let _ = write!(
        svg,
        r#"<g class="span"><title>onset {}, apex {}, offset {}</title><rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/><line x1="{xa:.1}" x2="{xa:.1}" y1="{y0:.1}" y2="{y1:.1}"/></g>"#,
        s.onset,
        s.apex,
        s.offset,
        (x1 - x0).max(2.0),
        y1 - y0,
    );
}

/// The frame axis under the plot: a baseline and labelled ticks.
fn frame_ticks(svg: &mut String, axis: &FrameAxis, y: f64) {
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/>"#,
        WIDTH - RIGHT
    );
    for f in axis.ticks() {
        let x = axis.x(f as f64);
        let _ = write!(
            svg,
            r#"<line class="axis" x1="{x:.1}" x2="{x:.1}" y1="{y:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{f}</text>"#,
            y + 4.0,
            y + 16.0
        );
    }
}

/// `v` with at most four decimals and no trailing zeros: `20`, `1.25`, `0.5`.
fn number(v: f64) -> String {
    let text = format!("{v:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten at or above `v` (1 when `v` is not
/// positive), so the value axis ends on a round number.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_has_a_point_per_frame_and_a_band_per_span() {
        let frames: Vec<usize> = (0..20).collect();
        let values: Vec<f32> = frames.iter().map(|f| (*f as f32 - 10.0).abs()).collect();
        let span = Span {
            onset: 4,
            apex: 8,
            offset: 12,
        };
        let svg = curve(&frames, &values, &[span]).unwrap();
        let points = svg.split("points=\"").nth(1).unwrap();
        let points = &points[..points.find('"').unwrap()];
        assert_eq!(points.split(' ').count(), 20);
        // Frame 0 at the left margin and value 10 (the top of a 0..10 axis) at the top.
        assert!(points.starts_with("48.0,10.0 "), "{points}");
        assert_eq!(svg.matches("<g class=\"span\">").count(), 1);
        assert!(svg.contains("<title>onset 4, apex 8, offset 12</title>"));
        assert!(svg.contains(">10</text>"), "the value axis ends at 10");
        assert!(svg.contains(">5</text>") && svg.contains(">0</text>"));
    }

    #[test]
    fn a_curve_needs_two_frames() {
        assert_eq!(curve(&[3], &[1.0], &[]), None);
        assert_eq!(curve(&[], &[], &[]), None);
    }

    #[test]
    fn ticks_fall_on_round_frames() {
        let axis = FrameAxis {
            first: 0.0,
            last: 71.0,
        };
        assert_eq!(axis.ticks(), vec![0, 10, 20, 30, 40, 50, 60, 70]);
        let short = FrameAxis {
            first: 3.0,
            last: 9.0,
        };
        assert_eq!(short.ticks(), vec![3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn value_labels_drop_trailing_zeros() {
        assert_eq!(number(20.0), "20");
        assert_eq!(number(1.25), "1.25");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.83), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.2), 2.0);
        assert_eq!(nice_ceiling(2.2), 2.5);
        assert_eq!(nice_ceiling(37.0), 50.0);
    }
}
