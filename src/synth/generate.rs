//! `actfer synth`: a SynthME dataset folder from a seed.
//!
//! Layout (README, "SynthME"):
//! ```text
//! DIR/settings.json                 the generator settings (a rerun must match them)
//! DIR/labels.json                   schema actfer.synthme/1, every clip (written last)
//! DIR/clips/ID/frames/00000.png     frames (or DIR/clips/ID/video.mp4 with --video)
//! DIR/clips/ID/flow/00000.flo       ground-truth flow, frame 0 -> 1 (--flow all)
//! DIR/clips/ID/flow/onset_apex_K.flo       event K, onset -> apex
//! DIR/clips/ID/flow/onset_apex_face_K.flo  the same, head held at the onset pose
//! DIR/clips/ID/mask.png             face mask of frame 0
//! DIR/clips/ID/sheet_K.png          contact sheet of event K (--sheets)
//! DIR/clips/ID/label.json           the clip's label: written when the clip is complete
//! ```
//! Clip `i` depends only on the seed, the settings and `i`: an interrupted run resumes
//! where it stopped (finished clips are kept), and the same settings give the same bytes.

use std::path::{Path, PathBuf};

use opencv::core::Size;
use opencv::prelude::*;
use opencv::videoio::{VideoWriter, VideoWriterTrait};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::clip::{face_mask, settle_blink, settle_event, Scene};
use super::identity::{base_image, Augment, Look, Split};
use super::labels::{ClipFiles, ClipLabel, Kind, Labels, SCHEMA};
use super::rng::Rng;
use super::sheet::contact_sheet;
use super::spec::{draw_clip, draw_long, ClipSpec, Switches};
use crate::error::{Error, Result};
use crate::eval::flow::write_flo;
use crate::face::Point;
use crate::media::write_image;

/// Bumped whenever the same settings would give different clips (2: cheek tissue controls).
pub const GENERATOR_VERSION: u32 = 2;
/// Mirror probability and ranges of the identity augmentation.
pub const MIRROR_SHARE: f32 = 0.5;
pub const SCALE_RANGE: (f32, f32) = (0.92, 1.08);
pub const COLOUR_RANGE: (f32, f32) = (0.9, 1.1);
/// Frame sides and rates accepted.
pub const SIZE_RANGE: (u32, u32) = (64, 1024);
pub const FPS_RANGE: (f32, f32) = (10.0, 1000.0);
/// The most frames one clip may have (a 60 s long video at 200 fps).
pub const MAX_CLIP_FRAMES: usize = 12_000;

/// Which ground-truth flows to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FlowOutput {
    /// Every consecutive pair and onset -> apex.
    All,
    /// Onset -> apex only.
    Apex,
    /// None.
    None,
}

/// Everything that decides a dataset's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub schema: String,
    pub version: u32,
    pub seed: u64,
    pub clips: usize,
    /// Identities from this split only; all splits when absent.
    pub split: Option<Split>,
    pub long: bool,
    pub fps: f32,
    pub size: u32,
    pub flow: FlowOutput,
    pub video: bool,
    pub switches: Switches,
    /// Write a contact sheet per expression (onset, apex, magnified difference, flow).
    #[serde(default)]
    pub sheets: bool,
}

impl Settings {
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str, reason: String| {
            Err(Error::Limit {
                what: what.to_string(),
                reason,
            })
        };
        if self.clips == 0 {
            return bad("--clips", "must be at least 1".into());
        }
        if !(SIZE_RANGE.0..=SIZE_RANGE.1).contains(&self.size) {
            return bad(
                "--size",
                format!(
                    "{} px is outside {}..={} px",
                    self.size, SIZE_RANGE.0, SIZE_RANGE.1
                ),
            );
        }
        if !(FPS_RANGE.0..=FPS_RANGE.1).contains(&self.fps) {
            return bad(
                "--fps",
                format!("{} is outside {}..={}", self.fps, FPS_RANGE.0, FPS_RANGE.1),
            );
        }
        Ok(())
    }
}

/// The clip ids: `clip_00000` or `long_00000`.
pub fn clip_id(settings: &Settings, i: usize) -> String {
    format!("{}_{i:05}", if settings.long { "long" } else { "clip" })
}

/// Writes (or completes) the dataset in `out`. `looks` are the prepared identities (see
/// [`super::identity::load_looks`]), already restricted to the split. `progress` is called
/// after each clip.
pub fn generate(
    out: &Path,
    settings: &Settings,
    looks: &[Look],
    progress: &(dyn Fn() + Sync),
) -> Result<Labels> {
    settings.check()?;
    if looks.is_empty() {
        return Err(Error::Internal("no identity to generate from".into()));
    }
    prepare_folder(out, settings)?;
    let root = Rng::new(settings.seed);
    let clips: Vec<ClipLabel> = (0..settings.clips)
        .into_par_iter()
        .map(|i| {
            let id = clip_id(settings, i);
            let dir = out.join("clips").join(&id);
            let done = dir.join("label.json");
            let label = if done.is_file() {
                read_json(&done)?
            } else {
                let label = make_clip(&dir, &id, settings, looks, &root.derive(i as u64))?;
                write_json(&done, &label)?;
                label
            };
            progress();
            Ok(label)
        })
        .collect::<Result<_>>()?;
    let labels = Labels {
        schema: SCHEMA.to_string(),
        generator: settings.clone(),
        clips,
    };
    write_json(&out.join("labels.json"), &labels)?;
    Ok(labels)
}

/// Creates `out` or checks that it holds a run with the same settings.
fn prepare_folder(out: &Path, settings: &Settings) -> Result<()> {
    let path = out.join("settings.json");
    if path.is_file() {
        let old: Settings = read_json(&path)?;
        if &old != settings {
            return Err(Error::bad_input(
                out,
                "holds a SynthME dataset made with other settings; choose another --out or \
                 delete the folder",
            ));
        }
        return Ok(());
    }
    if out.is_dir()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(Error::bad_input(
            out,
            "exists and is not a SynthME dataset folder (no settings.json); choose an empty or \
             new --out",
        ));
    }
    std::fs::create_dir_all(out.join("clips"))
        .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    write_json(&path, settings)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::bad_input(
            path,
            format!("is not a valid SynthME file ({e}); delete it to regenerate"),
        )
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("labels serialise");
    // Write then rename: a crash never leaves a half-written label that looks complete.
    let tmp = path.with_extension("json.part");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn augment(rng: &mut Rng) -> Augment {
    Augment {
        mirror: rng.chance(MIRROR_SHARE),
        scale: rng.range(SCALE_RANGE.0, SCALE_RANGE.1),
        colour: std::array::from_fn(|_| rng.range(COLOUR_RANGE.0, COLOUR_RANGE.1)),
    }
}

/// Draws, renders and writes clip `id` into `dir`.
fn make_clip(dir: &Path, id: &str, s: &Settings, looks: &[Look], rng: &Rng) -> Result<ClipLabel> {
    let mut draw = rng.derive(1);
    let look = draw.pick(looks);
    let aug = augment(&mut draw);
    let mut spec: ClipSpec = if s.long {
        draw_long(&mut draw, &s.switches, s.fps, s.size)
    } else {
        draw_clip(&mut draw, &s.switches, s.fps, s.size)
    };
    if spec.frames > MAX_CLIP_FRAMES {
        return Err(Error::Limit {
            what: format!("clip {id}"),
            reason: format!(
                "{} frames is more than {MAX_CLIP_FRAMES}; lower --fps",
                spec.frames
            ),
        });
    }
    let margin = s.size.div_ceil(16);
    let base = base_image(look, s.size, margin, &aug)?;
    let face_width = {
        let (a, b) = (base.landmarks[0], base.landmarks[16]);
        (a[0] - b[0]).hypot(a[1] - b[1])
    };
    let mut events = std::mem::take(&mut spec.events);
    {
        let probe = Scene::new(&base, s.size, s.fps, &[], &[], &spec.nuisance);
        for e in &mut events {
            settle_event(&probe, e, face_width)?;
        }
    }
    {
        let with_events = Scene::new(&base, s.size, s.fps, &events, &[], &spec.nuisance);
        for b in &mut spec.blinks {
            settle_blink(&with_events, b)?;
        }
    }
    let scene = Scene::new(&base, s.size, s.fps, &events, &spec.blinks, &spec.nuisance);
    let (files, flow_residual_px) = render_clip(dir, s, &scene, spec.frames, rng)?;
    let head0 = scene.frame_from_canvas(0);
    let landmarks: Vec<Point> = base.landmarks.iter().map(|p| head0.apply(*p)).collect();
    let emotion = match spec.kind {
        Kind::Micro | Kind::Macro => Some(events[0].emotion),
        Kind::None => Some(crate::facs::emotion::Emotion::Neutral),
        Kind::Long => None,
    };
    let head = if spec.nuisance.head.is_some() {
        (0..spec.frames).map(|t| scene.head(t)).collect()
    } else {
        Vec::new()
    };
    Ok(ClipLabel {
        id: id.to_string(),
        split: look.source.split,
        person: look.source.person.to_string(),
        look: look.name(),
        augment: aug,
        kind: spec.kind,
        emotion,
        fps: s.fps,
        frames: spec.frames,
        size: s.size,
        face_width_px: face_width,
        events,
        blinks: spec.blinks,
        nuisance: spec.nuisance,
        head,
        landmarks,
        flow_residual_px,
        files,
    })
}

fn rel(dir: &Path, name: &str) -> String {
    let clip = dir.file_name().unwrap().to_string_lossy();
    format!("clips/{clip}/{name}")
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// An event's onset frame, kept until its apex: source map, head transform, image.
type Onset = (
    Vec<Point>,
    crate::face::geometry::Affine2,
    crate::media::RgbImage,
);

/// A contact sheet's title: clip, kind, emotion, AUs, apex displacement, frames.
fn sheet_title(dir: &Path, e: &super::labels::Event) -> String {
    use super::labels::Side;
    let aus: Vec<String> = e
        .aus
        .iter()
        .map(|a| match a.side {
            Some(Side::Left) => format!("L{}", a.au),
            Some(Side::Right) => format!("R{}", a.au),
            None => a.au.to_string(),
        })
        .collect();
    format!(
        "{} {:?} {} AU{} {:.2} px, frames {}-{}",
        dir.file_name().unwrap().to_string_lossy(),
        e.kind,
        e.emotion.name(),
        aus.join("+"),
        e.apex_displacement_px,
        e.onset,
        e.apex
    )
}

/// Renders every frame in order, writing frames and flows as they come (memory stays at a
/// few frames whatever the clip length).
fn render_clip(
    dir: &Path,
    s: &Settings,
    scene: &Scene,
    frames: usize,
    rng: &Rng,
) -> Result<(ClipFiles, f32)> {
    let flow_dir = dir.join("flow");
    create(&flow_dir)?;
    let frames_rel = if s.video {
        create(dir)?;
        rel(dir, "video.mp4")
    } else {
        create(&dir.join("frames"))?;
        rel(dir, "frames")
    };
    let mut video = if s.video {
        let path = dir.join("video.mp4");
        let fourcc = VideoWriter::fourcc('m', 'p', '4', 'v')?;
        let size = Size::new(s.size as i32, s.size as i32);
        let w = VideoWriter::new(&path, fourcc, s.fps as f64, size, true)?;
        if !w.is_opened()? {
            return Err(Error::bad_input(
                path,
                "OpenCV cannot write mp4 here; drop --video",
            ));
        }
        Some(w)
    } else {
        None
    };
    let noise = rng.derive(2);
    let mut previous: Option<Vec<Point>> = None;
    // Per event: the onset frame's source map and transform, kept until its apex.
    let mut onsets: Vec<Option<Onset>> = vec![None; scene.events.len()];
    let mut sheets = Vec::new();
    let mut worst_residual = 0.0f32;
    for t in 0..frames {
        let g = scene.geometry(t)?;
        let src = scene.source_map(&g);
        if let Some(prev) = &previous {
            if s.flow == FlowOutput::All {
                let (f, r) = scene.flow(prev, &g, &g.frame_from_canvas);
                worst_residual = worst_residual.max(r);
                write_flo(&flow_dir.join(format!("{:05}.flo", t - 1)), &f)?;
            }
        }
        let img = scene.finish(t, scene.render(&src), frames, &noise)?;
        for (k, e) in scene.events.iter().enumerate() {
            if t == e.onset && (s.flow != FlowOutput::None || s.sheets) {
                onsets[k] = Some((src.clone(), g.frame_from_canvas, img.clone()));
            }
            if t == e.apex {
                if let Some((osrc, ohead, oimg)) = onsets[k].take() {
                    let (f, r) = scene.flow(&osrc, &g, &g.frame_from_canvas);
                    worst_residual = worst_residual.max(r);
                    if s.flow != FlowOutput::None {
                        write_flo(&flow_dir.join(format!("onset_apex_{k}.flo")), &f)?;
                        let (ff, rf) = scene.flow(&osrc, &g, &ohead);
                        write_flo(&flow_dir.join(format!("onset_apex_face_{k}.flo")), &ff)?;
                        worst_residual = worst_residual.max(rf);
                    }
                    if s.sheets {
                        let name = format!("sheet_{k}.png");
                        let sheet = contact_sheet(&oimg, &img, &f, &sheet_title(dir, e))?;
                        write_image(&dir.join(&name), &sheet)?;
                        sheets.push(rel(dir, &name));
                    }
                }
            }
        }
        match &mut video {
            Some(w) => w.write(&img.to_bgr_mat()?)?,
            None => write_image(&dir.join("frames").join(format!("{t:05}.png")), &img)?,
        }
        previous = (s.flow == FlowOutput::All).then_some(src);
    }
    if let Some(mut w) = video {
        w.release()?;
    }
    tracing::debug!(clip = %dir.display(), worst_residual, "ground-truth flow solved");
    let head0 = scene.frame_from_canvas(0);
    let lm: [Point; 68] = std::array::from_fn(|i| head0.apply(scene.base.landmarks[i]));
    write_image(&dir.join("mask.png"), &face_mask(&lm, s.size))?;
    let files = ClipFiles {
        frames: frames_rel,
        flow: rel(dir, "flow"),
        mask: rel(dir, "mask.png"),
        sheets,
    };
    Ok((files, worst_residual))
}

/// The dataset folder's clip directory for `id`.
pub fn clip_dir(out: &Path, id: &str) -> PathBuf {
    out.join("clips").join(id)
}
