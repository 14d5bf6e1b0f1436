//! The classical optical-flow methods the micro-expression literature compares against, through
//! OpenCV, behind [`FlowMethod`]: Dual TV-L1 (the ME default, OpenCV's defaults: tau 0.25,
//! lambda 0.15, theta 0.3, 5 scales, 5 warps), DIS (ultrafast, fast and medium presets) and
//! Farneback (pyramid scale 0.5, 3 levels, window 15, 3 iterations, polynomial 5 / 1.2).
//! Frames are converted to 8-bit grey (OpenCV's BT.601 weights) first.

use opencv::core::{Mat, Vec2f, CV_32FC2};
use opencv::imgproc;
use opencv::prelude::*;
use opencv::{optflow, video};

use super::FlowMethod;
use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::media::RgbImage;

/// A classical method and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classical {
    Tvl1,
    Dis(DisPreset),
    Farneback,
}

/// DIS presets, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisPreset {
    Ultrafast,
    Fast,
    Medium,
}

impl Classical {
    /// Every classical method, in the order benchmarks print them.
    pub const ALL: [Classical; 5] = [
        Classical::Tvl1,
        Classical::Dis(DisPreset::Ultrafast),
        Classical::Dis(DisPreset::Fast),
        Classical::Dis(DisPreset::Medium),
        Classical::Farneback,
    ];

    /// By the CLI's name: `tvl1`, `dis` (medium), `dis-fast`, `dis-ultrafast`, `farneback`.
    pub fn parse(name: &str) -> Option<Classical> {
        Some(match name {
            "tvl1" => Classical::Tvl1,
            "dis" | "dis-medium" => Classical::Dis(DisPreset::Medium),
            "dis-fast" => Classical::Dis(DisPreset::Fast),
            "dis-ultrafast" => Classical::Dis(DisPreset::Ultrafast),
            "farneback" => Classical::Farneback,
            _ => return None,
        })
    }
}

fn grey(img: &RgbImage) -> Result<Mat> {
    let mut g = Mat::default();
    imgproc::cvt_color_def(&img.to_bgr_mat()?, &mut g, imgproc::COLOR_BGR2GRAY)?;
    Ok(g)
}

/// Copies an OpenCV CV_32FC2 flow into a [`Flow`].
fn from_mat(m: &Mat) -> Result<Flow> {
    if m.typ() != CV_32FC2 {
        return Err(Error::Internal(format!(
            "OpenCV flow has type {}, expected CV_32FC2",
            m.typ()
        )));
    }
    let (w, h) = (m.cols() as usize, m.rows() as usize);
    let mut flow = Flow::zeros(w, h);
    for y in 0..h {
        let row = m.at_row::<Vec2f>(y as i32)?;
        for (x, v) in row.iter().enumerate() {
            flow.uv[2 * (y * w + x)] = v[0];
            flow.uv[2 * (y * w + x) + 1] = v[1];
        }
    }
    Ok(flow)
}

impl FlowMethod for Classical {
    fn name(&self) -> &str {
        match self {
            Classical::Tvl1 => "tvl1",
            Classical::Dis(DisPreset::Medium) => "dis",
            Classical::Dis(DisPreset::Fast) => "dis-fast",
            Classical::Dis(DisPreset::Ultrafast) => "dis-ultrafast",
            Classical::Farneback => "farneback",
        }
    }

    fn estimate(&self, a: &RgbImage, b: &RgbImage) -> Result<Flow> {
        if (a.width, a.height) != (b.width, b.height) {
            return Err(Error::Internal(format!(
                "flow between frames of different sizes: {}x{} and {}x{}",
                a.width, a.height, b.width, b.height
            )));
        }
        let (ga, gb) = (grey(a)?, grey(b)?);
        let mut out = Mat::default();
        match self {
            Classical::Tvl1 => {
                optflow::DualTVL1OpticalFlow::create_def()?.calc(&ga, &gb, &mut out)?;
            }
            Classical::Dis(p) => {
                let preset = match p {
                    DisPreset::Ultrafast => video::DISOpticalFlow_PRESET_ULTRAFAST,
                    DisPreset::Fast => video::DISOpticalFlow_PRESET_FAST,
                    DisPreset::Medium => video::DISOpticalFlow_PRESET_MEDIUM,
                };
                video::DISOpticalFlow::create(preset)?.calc(&ga, &gb, &mut out)?;
            }
            Classical::Farneback => {
                video::calc_optical_flow_farneback(&ga, &gb, &mut out, 0.5, 3, 15, 3, 5, 1.2, 0)?;
            }
        }
        from_mat(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured frame shifted by (`dx`, `dy`) whole pixels.
    fn textured(w: u32, h: u32, dx: i32, dy: i32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for y in 0..h as i32 {
            for x in 0..w as i32 {
                let (fx, fy) = ((x - dx) as f32, (y - dy) as f32);
                let v = 128.0
                    + 50.0 * (fx / 4.0).sin() * (fy / 5.0).cos()
                    + 40.0 * ((fx + 2.0 * fy) / 7.0).sin();
                let i = ((y as u32 * w + x as u32) * 3) as usize;
                img.data[i..i + 3].fill(v.round() as u8);
            }
        }
        img
    }

    #[test]
    fn every_method_finds_a_two_pixel_shift() {
        let (a, b) = (textured(96, 96, 0, 0), textured(96, 96, 2, -1));
        for m in Classical::ALL {
            let f = m.estimate(&a, &b).unwrap();
            assert_eq!((f.width, f.height), (96, 96));
            // Mean flow over the interior (borders see content entering the frame).
            let (mut u, mut v, mut n) = (0.0, 0.0, 0.0);
            for y in 16..80 {
                for x in 16..80 {
                    let (fu, fv) = f.at(x, y);
                    u += fu;
                    v += fv;
                    n += 1.0;
                }
            }
            let (u, v) = (u / n, v / n);
            assert!(
                (u - 2.0).abs() < 0.3 && (v + 1.0).abs() < 0.3,
                "{}: ({u}, {v})",
                m.name()
            );
            assert_eq!(Classical::parse(m.name()), Some(m));
        }
        assert!(Classical::parse("raft").is_none());
    }
}
