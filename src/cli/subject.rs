//! Which frame of a clip the one-frame commands (`ask`, `au`) read.

use actfer::evidence::AppearanceModels;
use actfer::media::{Frame, Media};
use actfer::Error;

/// Frame `asked` (0-based; out of range is the user's mistake, exit code 2), or else the first
/// frame with a face ([`first_face_frame`]).
pub fn subject_frame(
    media: &Media,
    models: &AppearanceModels,
    input: &std::path::Path,
    asked: Option<usize>,
) -> anyhow::Result<Frame> {
    match asked {
        Some(k) => Ok(media.frames()?.nth(k).ok_or_else(|| {
            Error::bad_input(
                input,
                format!(
                    "--frame {k} asked for, but the input has {} frame(s)",
                    media.info().frames
                ),
            )
        })??),
        None => first_face_frame(media, models, input),
    }
}

/// Frames searched for a face when `--frame` is not given: 30 s at 30 fps.
const FACE_SEARCH_FRAMES: usize = 900;

/// The first frame in which the detector finds a face (frame 0 of an image), said in a warning
/// when it is not frame 0; a clip with no face in its first [`FACE_SEARCH_FRAMES`] frames is
/// refused (exit 3).
pub fn first_face_frame(
    media: &Media,
    models: &AppearanceModels,
    input: &std::path::Path,
) -> anyhow::Result<Frame> {
    let mut searched = 0;
    for frame in media.frames()?.take(FACE_SEARCH_FRAMES) {
        let frame = frame?;
        searched += 1;
        if media.info().frames <= 1 || !models.faces.mtcnn.detect(&frame.image)?.is_empty() {
            if frame.index > 0 {
                tracing::warn!(
                    "{}: no face in frames 0 to {}; reading frame {}, the first with a face \
                     (--frame picks another)",
                    input.display(),
                    frame.index - 1,
                    frame.index
                );
            }
            return Ok(frame);
        }
    }
    Err(Error::NoFace {
        path: input.to_path_buf(),
        detail: format!("no face found in the first {searched} frame(s)"),
    }
    .into())
}
