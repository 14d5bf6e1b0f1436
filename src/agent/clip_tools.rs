//! The tools that read a clip's motion: spot_expressions, au_evidence from motion, and
//! optical_flow between two frames. What they measure is kept, so a later step reuses it.
//!
//! Charts and flow colour maps go in the trace directory, under names the toolbox makes.

use serde_json::{json, Value};

use super::tools::{au_data, au_list, prototypes, refusal, Toolbox};
use super::trace::Observation;
use crate::error::Result;
use crate::flow::method::Timed;
use crate::flow::{colour_map_with_scale, FlowMethod};
use crate::media::{write_image, Media};
use crate::motion::clip::{
    analyze_intervals, analyze_pair, fetch_frames, spot_clip, strongest, ClipOptions,
    IntervalAnalysis, Spotted,
};
use crate::motion::plot::plot_spotting;
use crate::motion::regions::RegionMotion;

/// How many moving regions an optical_flow observation names.
const FLOW_REGIONS: usize = 4;

/// A clip for the motion tools: the media, the flow method and the analysis options; what
/// they measure is kept for later steps.
pub struct ClipMotion {
    pub media: Media,
    /// The clip's flow method, timed.
    pub method: Timed,
    pub options: ClipOptions,
    pub(super) spotted: Option<Spotted>,
    intervals: Option<Vec<IntervalAnalysis>>,
    /// Seconds of flow by optical_flow's other methods.
    other_flow_seconds: f64,
}

impl ClipMotion {
    pub fn new(media: Media, method: Box<dyn FlowMethod>, options: ClipOptions) -> Self {
        ClipMotion {
            media,
            method: Timed::new(method),
            options,
            spotted: None,
            intervals: None,
            other_flow_seconds: 0.0,
        }
    }

    /// Seconds spent estimating optical flow so far.
    pub fn flow_seconds(&self) -> f64 {
        self.method.seconds() + self.other_flow_seconds
    }

    /// The flow methods optical_flow offers: the clip's own first, then the others.
    pub fn methods(&self) -> Vec<String> {
        let own = self.method.name().to_string();
        let mut out = vec![own.clone()];
        out.extend(
            [
                "dis",
                "tvl1",
                "farneback",
                crate::flow::meflownet::MODEL_NAME,
            ]
            .iter()
            .filter(|m| **m != own)
            .map(|m| m.to_string()),
        );
        out
    }
}

impl Toolbox<'_> {
    fn spotted(&mut self) -> Result<Option<&Spotted>> {
        let faces = &self.models.faces;
        let Some(clip) = self.clip.as_mut() else {
            return Ok(None);
        };
        if clip.spotted.is_none() {
            let s = spot_clip(&clip.media, faces, &clip.method, &clip.options, |_| {})?;
            clip.spotted = Some(s);
        }
        Ok(clip.spotted.as_ref())
    }

    pub(super) fn spot(&mut self, step: usize) -> Result<Observation> {
        let fps = self.clip.as_ref().and_then(|c| c.media.info().fps);
        let dir = self.artifacts.clone();
        let Some(s) = self.spotted()? else {
            return Ok(refusal(
                "spot_expressions needs a clip; the input is one image".into(),
            ));
        };
        let fps = fps.unwrap_or(crate::media::DEFAULT_FOLDER_FPS);
        let spots = &s.spotting.spots;
        let mut text = format!(
            "{} expression(s), {} blink(s) in {} frames",
            spots.len(),
            s.spotting.blinks.len(),
            s.series.frames.len()
        );
        for (k, sp) in spots.iter().enumerate() {
            text.push_str(&format!(
                "; #{} {:?} onset {} apex {} offset {} ({:.2} s), strongest on {}",
                k + 1,
                sp.kind,
                sp.onset,
                sp.apex,
                sp.offset,
                sp.apex as f64 / fps,
                sp.curve
            ));
        }
        // The strongest AU curve at each measured frame, for the report's spotting chart.
        let frames: Vec<usize> = s.series.frames.iter().map(|f| f.index).collect();
        let values: Vec<f32> = (0..frames.len())
            .map(|i| {
                s.curves
                    .iter()
                    .filter_map(|c| c.values.get(i))
                    .fold(0.0f32, |m, v| m.max(*v))
            })
            .collect();
        let data = json!({
            "spots": spots,
            "blinks": s.spotting.blinks.len(),
            "curve": {"frames": frames, "values": values},
        });
        let mut artifacts = Vec::new();
        if let Some(dir) = dir {
            let mut curves = s.curves.clone();
            curves.push(s.blink.clone());
            let chart = plot_spotting(&curves, &s.spotting, s.series.fps, 1000, 500)?;
            let file = format!("step{step}-spotting.png");
            save(&dir, &file, &chart)?;
            artifacts.push(file);
        }
        Ok(Observation::ok(text, data, artifacts))
    }

    pub(super) fn motion_evidence(&mut self) -> Result<Observation> {
        if self.spotted()?.is_none() {
            return Ok(refusal(
                "motion evidence needs a clip; use source appearance".into(),
            ));
        }
        let faces = &self.models.faces;
        let clip = self.clip.as_mut().expect("spotted above");
        if clip.intervals.is_none() {
            let pairs: Vec<(usize, usize)> = clip
                .spotted
                .as_ref()
                .expect("spotted above")
                .spotting
                .spots
                .iter()
                .map(|s| (s.onset, s.apex))
                .collect();
            let iv = analyze_intervals(
                &clip.media,
                faces,
                &clip.method,
                &pairs,
                &clip.options.motion,
            )?;
            clip.intervals = Some(iv);
        }
        let intervals = clip.intervals.as_ref().expect("set above");
        if intervals.is_empty() {
            return Ok(Observation {
                text: "no expression was spotted, so no motion to read".into(),
                data: json!({"source": "motion", "aus": []}),
                ..Default::default()
            });
        }
        let mut parts = Vec::new();
        let mut all: Vec<&crate::facs::evidence::AuEvidence> = Vec::new();
        for (k, iv) in intervals.iter().enumerate() {
            let present: Vec<_> = iv.expression.aus.iter().filter(|a| a.present()).collect();
            parts.push(format!(
                "#{} (onset {} -> apex {}): {}",
                k + 1,
                iv.onset,
                iv.apex,
                if present.is_empty() {
                    "no AU present".to_string()
                } else {
                    au_list(&present)
                }
            ));
            all.extend(present);
        }
        // the emotions ranked by the main expression's AUs (weak ones included)
        let main = strongest(intervals).expect("some intervals");
        Ok(Observation {
            text: format!("motion: {}", parts.join("; ")),
            data: json!({
                "source": "motion",
                "aus": au_data(&all),
                "prototypes": prototypes(&main.expression.inference),
            }),
            ..Default::default()
        })
    }

    /// The facial flow (head motion removed) from `onset` to `apex` on the face aligned at
    /// the onset frame, with `method`: the regions that moved most, the AUs that motion
    /// shows, and its colour map as an artifact.
    pub(super) fn optical_flow(&mut self, step: usize, args: &Value) -> Result<Observation> {
        let Some(clip) = self.clip.as_ref() else {
            return Ok(refusal(
                "optical_flow needs a clip; the input is one image".into(),
            ));
        };
        let frames = clip.media.info().frames;
        let (onset, apex) = match (args["onset"].as_u64(), args["apex"].as_u64()) {
            (Some(o), Some(a)) if o < a && (a as usize) < frames => (o as usize, a as usize),
            _ => {
                return Ok(refusal(format!(
                    "optical_flow needs args.onset < args.apex, frames of the clip (0 to {})",
                    frames.saturating_sub(1)
                )))
            }
        };
        let name = args["method"]
            .as_str()
            .unwrap_or(clip.method.name())
            .to_string();
        if !clip.methods().contains(&name) {
            return Ok(refusal(format!(
                "optical_flow's method is one of {}",
                clip.methods().join(", ")
            )));
        }
        let other = match name == clip.method.name() {
            true => None,
            false => Some(Timed::new(crate::flow::method::by_name(&name)?)),
        };
        let method: &dyn FlowMethod = match &other {
            Some(m) => m,
            None => &clip.method,
        };
        let images = fetch_frames(&clip.media, &[onset, apex])?;
        let path = clip.media.info().path.clone();
        let (iv, motion) = match analyze_pair(
            &self.models.faces,
            method,
            (onset, &images[&onset]),
            (apex, &images[&apex]),
            &clip.options.motion,
            &path,
        ) {
            Ok(x) => x,
            Err(crate::Error::NoFace { detail, .. }) => return Ok(refusal(detail)),
            Err(e) => return Err(e),
        };
        if let Some(m) = &other {
            self.clip.as_mut().expect("a clip").other_flow_seconds += m.seconds();
        }
        let present: Vec<_> = iv.expression.aus.iter().filter(|a| a.present()).collect();
        let moved = moving_regions(&iv.regions, iv.iod_px);
        let centre = super::super::motion::pair::ALIGNED_SIZE as f64 / 2.0;
        let (hx, hy) = iv.head.head.at(centre, centre);
        let mut text = format!(
            "facial flow {onset} -> {apex} ({name}, head motion of {:.1} px removed)",
            hx.hypot(hy)
        );
        text.push_str(&if moved.is_empty() {
            "; no region moved".to_string()
        } else {
            format!(
                "; moved most: {}",
                moved
                    .iter()
                    .map(|r| format!(
                        "{} {:.2} px {}",
                        r.region,
                        r.mean_magnitude,
                        direction(r.direction_deg)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        text.push_str(&if present.is_empty() {
            "; no AU present".to_string()
        } else {
            format!("; present: {}", au_list(&present))
        });
        let data = json!({
            "onset": onset,
            "apex": apex,
            "method": name,
            "iod_px": iv.iod_px,
            "head_px": [hx, hy],
            "regions": moved.iter().map(|r| json!({
                "region": r.region,
                "mean_magnitude_px": r.mean_magnitude,
                "direction_deg": r.direction_deg,
            })).collect::<Vec<_>>(),
            "aus": au_data(&present),
            "prototypes": prototypes(&iv.expression.inference),
        });
        let mut artifacts = Vec::new();
        if let Some(dir) = &self.artifacts {
            let file = format!("step{step}-flow-{onset}-{apex}-{name}.png");
            save(dir, &file, &colour_map_with_scale(&motion.facial)?)?;
            artifacts.push(file);
        }
        Ok(Observation::ok(text, data, artifacts))
    }
}

/// The regions that moved most (mean magnitude at least half a percent of the IOD, about
/// 0.3 px on the aligned face), strongest first.
fn moving_regions(regions: &[RegionMotion], iod_px: f32) -> Vec<&RegionMotion> {
    let floor = 0.005 * iod_px;
    let mut moved: Vec<&RegionMotion> = regions
        .iter()
        .filter(|r| r.pixels > 0 && r.mean_magnitude >= floor)
        .collect();
    moved.sort_by(|a, b| b.mean_magnitude.total_cmp(&a.mean_magnitude));
    moved.truncate(FLOW_REGIONS);
    moved
}

/// A direction in degrees (0 right, 90 up) as a word.
fn direction(deg: f32) -> &'static str {
    const WORDS: [&str; 8] = [
        "right",
        "up-right",
        "up",
        "up-left",
        "left",
        "down-left",
        "down",
        "down-right",
    ];
    let k = ((deg.rem_euclid(360.0) + 22.5) / 45.0) as usize % 8;
    WORDS[k]
}

/// Writes an artifact image under the trace directory (made when missing).
pub(super) fn save(
    dir: &std::path::Path,
    file: &str,
    image: &crate::media::RgbImage,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir.display().to_string(), e))?;
    write_image(&dir.join(file), image)
}

#[cfg(test)]
mod tests {
    use super::direction;

    #[test]
    fn directions_in_words() {
        assert_eq!(direction(0.0), "right");
        assert_eq!(direction(90.0), "up");
        assert_eq!(direction(-90.0), "down");
        assert_eq!(direction(180.0), "left");
        assert_eq!(direction(-180.0), "left");
        assert_eq!(direction(44.0), "up-right");
        assert_eq!(direction(-30.0), "down-right");
    }
}
