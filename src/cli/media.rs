//! `actfer media probe`.

use std::path::PathBuf;

use actfer::media::{Media, MediaInfo, OpenOptions};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MediaCommand {
    /// Frames, size, fps and kind of a video, a folder of frames, or an image. Videos are
    /// decoded to count frames exactly and to catch truncation.
    Probe {
        /// Video file, folder of frames, or image.
        input: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Frame rate of a folder of frames (default 30).
        #[arg(long)]
        fps: Option<f64>,
        /// Trust the video container's frame count instead of decoding every frame.
        #[arg(long)]
        fast: bool,
    },
}

impl MediaCommand {
    pub fn wants_json(&self) -> bool {
        matches!(self, MediaCommand::Probe { json: true, .. })
    }
}

pub fn run(cmd: MediaCommand) -> anyhow::Result<()> {
    match cmd {
        MediaCommand::Probe {
            input,
            json,
            fps,
            fast,
        } => {
            let options = OpenOptions {
                fps,
                ..Default::default()
            };
            let info = if fast {
                Media::open(&input, &options)?.info().clone()
            } else {
                Media::probe(&input, &options)?
            };
            if json {
                super::print_json(&info)?;
            } else {
                print_info(&info);
            }
        }
    }
    Ok(())
}

fn print_info(info: &MediaInfo) {
    let kind = serde_json::to_value(info.kind).unwrap_or_default();
    let mut line = format!(
        "{}: {}, {} frame{}, {}x{}",
        info.path.display(),
        kind.as_str().unwrap_or("?"),
        info.frames,
        if info.frames == 1 { "" } else { "s" },
        info.width,
        info.height
    );
    if let Some(fps) = info.fps {
        let source = serde_json::to_value(info.fps_source).unwrap_or_default();
        line += &format!(", {fps:.3} fps ({})", source.as_str().unwrap_or("?"));
    }
    if let Some(d) = info.duration_s {
        line += &format!(", {d:.2} s");
    }
    if let Some(codec) = &info.codec {
        line += &format!(", codec {codec}");
    }
    println!("{line}");
}
