//! Media input: a video file, a folder of frames, or a single image, read the same way.
//!
//! [`Media::open`] looks at the input once (kind, frame count, size, fps) and [`Media::frames`]
//! streams RGB frames with timestamps, one at a time, so a long clip never sits in memory
//! unless [`Media::read_all`] is asked for.

mod folder;
pub mod header;
mod image;
mod video;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

pub use folder::natural_cmp;
pub use image::{read_image, write_image, RgbImage};

/// Frames wider or taller than this (in pixels) are refused, an image from its header before
/// it is decoded: 8K UHD is 7680 wide.
pub const MAX_FRAME_SIDE: u32 = 8192;

/// Frame rate assumed for a folder of frames when the user gives none.
pub const DEFAULT_FOLDER_FPS: f64 = 30.0;

/// File extensions read as still images (and as frames inside a folder).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "pgm", "ppm",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Frames,
    Image,
}

/// Where a frame rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FpsSource {
    /// Read from the video container.
    Container,
    /// Given by the user.
    User,
    /// [`DEFAULT_FOLDER_FPS`], for a folder of frames with no rate given.
    Default,
    /// A single image has no frame rate.
    None,
}

/// What an input holds. `frames` is exact: for videos it is counted by decoding unless the
/// caller asked to trust the container header.
#[derive(Debug, Clone, Serialize)]
pub struct MediaInfo {
    pub path: PathBuf,
    pub kind: MediaKind,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
    pub fps_source: FpsSource,
    pub duration_s: Option<f64>,
    /// FourCC of a video's codec, as the container reports it.
    pub codec: Option<String>,
}

/// One decoded frame. `time_s` is `index / fps` (0 for a single image).
#[derive(Debug, Clone)]
pub struct Frame {
    pub index: usize,
    pub time_s: f64,
    pub image: RgbImage,
}

/// How to open an input.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Frame rate for a folder of frames (videos keep their own).
    pub fps: Option<f64>,
    /// Refuse inputs with more frames than this.
    pub max_frames: Option<usize>,
}

/// An opened input.
pub struct Media {
    info: MediaInfo,
    source: Source,
}

enum Source {
    Video,
    Folder(Vec<PathBuf>),
    Image,
}

impl Media {
    /// Opens an input and reads its header: a folder is a frame folder, a file with an image
    /// extension is a still image, anything else is tried as a video.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Media> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            _ => Error::io(format!("{}", path.display()), e),
        })?;
        let (info, source) = if meta.is_dir() {
            let files = folder::list_frames(path)?;
            let first = read_image(&files[0])?;
            let fps = options.fps.unwrap_or(DEFAULT_FOLDER_FPS);
            let info = MediaInfo {
                path: path.to_path_buf(),
                kind: MediaKind::Frames,
                frames: files.len(),
                width: first.width,
                height: first.height,
                fps: Some(fps),
                fps_source: if options.fps.is_some() {
                    FpsSource::User
                } else {
                    FpsSource::Default
                },
                duration_s: Some(files.len() as f64 / fps),
                codec: None,
            };
            (info, Source::Folder(files))
        } else if has_image_extension(path) {
            let img = read_image(path)?;
            let info = MediaInfo {
                path: path.to_path_buf(),
                kind: MediaKind::Image,
                frames: 1,
                width: img.width,
                height: img.height,
                fps: None,
                fps_source: FpsSource::None,
                duration_s: None,
                codec: None,
            };
            (info, Source::Image)
        } else {
            if meta.len() == 0 {
                return Err(Error::bad_input(
                    path,
                    "the file is empty; expected a video or an image",
                ));
            }
            (video::read_header(path)?, Source::Video)
        };
        check_frame_size(&info)?;
        if let Some(max) = options.max_frames {
            if info.frames > max {
                return Err(Error::Limit {
                    what: info.path.display().to_string(),
                    reason: format!(
                        "{} frames is more than the limit of {max}; raise --max-frames or cut the clip",
                        info.frames
                    ),
                });
            }
        }
        Ok(Media { info, source })
    }

    /// Opens an input and, for a video, decodes every frame to count them exactly; a video
    /// that stops before the frame count its container announces is reported as truncated.
    pub fn probe(path: &Path, options: &OpenOptions) -> Result<MediaInfo> {
        let media = Media::open(path, options)?;
        let mut info = media.info.clone();
        if media.info.kind == MediaKind::Video {
            info.frames = video::count_frames(&media.info)?;
            info.duration_s = info.fps.map(|fps| info.frames as f64 / fps);
        }
        Ok(info)
    }

    pub fn info(&self) -> &MediaInfo {
        &self.info
    }

    /// Streams the frames in order. Each item is decoded when asked for.
    pub fn frames(&self) -> Result<Frames<'_>> {
        let inner = match &self.source {
            Source::Video => FramesInner::Video(video::VideoFrames::new(&self.info)?),
            Source::Folder(files) => FramesInner::Folder(files.iter()),
            Source::Image => FramesInner::Image(Some(&self.info.path)),
        };
        Ok(Frames {
            info: &self.info,
            inner,
            next_index: 0,
        })
    }

    /// Decodes every frame into memory.
    pub fn read_all(&self) -> Result<Vec<Frame>> {
        self.frames()?.collect()
    }
}

/// Iterator over the frames of a [`Media`]; see [`Media::frames`].
pub struct Frames<'a> {
    info: &'a MediaInfo,
    inner: FramesInner<'a>,
    next_index: usize,
}

enum FramesInner<'a> {
    Video(video::VideoFrames),
    Folder(std::slice::Iter<'a, PathBuf>),
    Image(Option<&'a PathBuf>),
}

impl Iterator for Frames<'_> {
    type Item = Result<Frame>;

    fn next(&mut self) -> Option<Result<Frame>> {
        let image = match &mut self.inner {
            FramesInner::Video(frames) => frames.next()?,
            FramesInner::Folder(files) => {
                let file = files.next()?;
                read_image(file).and_then(|img| {
                    if (img.width, img.height) == (self.info.width, self.info.height) {
                        Ok(img)
                    } else {
                        Err(Error::bad_input(
                            file,
                            format!(
                                "frame is {}x{} but the folder's first frame is {}x{}; all frames must have one size",
                                img.width, img.height, self.info.width, self.info.height
                            ),
                        ))
                    }
                })
            }
            FramesInner::Image(path) => read_image(path.take()?),
        };
        let index = self.next_index;
        self.next_index += 1;
        let time_s = self.info.fps.map_or(0.0, |fps| index as f64 / fps);
        Some(image.map(|image| Frame {
            index,
            time_s,
            image,
        }))
    }
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn check_frame_size(info: &MediaInfo) -> Result<()> {
    check_side(&info.path, info.width, info.height)?;
    if info.width == 0 || info.height == 0 {
        return Err(Error::bad_input(
            &info.path,
            "the frames have no pixels (0 width or height)",
        ));
    }
    Ok(())
}

/// Refuses a frame of `width` x `height` with a side over [`MAX_FRAME_SIDE`].
pub(crate) fn check_side(path: &Path, width: u32, height: u32) -> Result<()> {
    if width > MAX_FRAME_SIDE || height > MAX_FRAME_SIDE {
        return Err(Error::Limit {
            what: path.display().to_string(),
            reason: format!(
                "frames of {width}x{height} exceed the limit of {MAX_FRAME_SIDE}x{MAX_FRAME_SIDE} \
                 pixels; downscale the input first"
            ),
        });
    }
    Ok(())
}
