//! Running flow methods on the same SynthME pairs: the pairs of a dataset folder (onset and
//! apex frames of each expression of a kind, with the ground-truth flow and the face mask),
//! and one method's pooled EPE and speed over them.

use std::path::Path;
use std::time::Instant;

use super::FlowMethod;
use crate::error::{Error, Result};
use crate::eval::flow::{epe, read_flo, read_mask, Epe, Flow};
use crate::media::{read_image, RgbImage};
use crate::synth::labels::{Kind, Labels};

/// One frame pair with its ground truth.
pub struct Pair {
    /// `clip_id:event`.
    pub name: String,
    pub a: RgbImage,
    pub b: RgbImage,
    pub gold: Flow,
    pub mask: Vec<bool>,
}

/// The onset -> apex pairs of every event of `kind` (micro or macro) in a SynthME folder
/// written with frame folders and onset -> apex flows.
pub fn onset_apex_pairs(root: &Path, labels: &Labels, kind: Kind) -> Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    for clip in &labels.clips {
        if clip.files.frames.ends_with(".mp4") {
            return Err(Error::bad_input(
                root,
                "holds mp4 clips; flow comparison needs frame folders (synth without --video)",
            ));
        }
        let (_, _, mask) = read_mask(&root.join(&clip.files.mask))?;
        for (k, e) in clip.events.iter().enumerate() {
            if e.kind != kind {
                continue;
            }
            let frame =
                |t: usize| read_image(&root.join(&clip.files.frames).join(format!("{t:05}.png")));
            let gold = read_flo(
                &root
                    .join(&clip.files.flow)
                    .join(format!("onset_apex_{k}.flo")),
            )?;
            pairs.push(Pair {
                name: format!("{}:{k}", clip.id),
                a: frame(e.onset)?,
                b: frame(e.apex)?,
                gold,
                mask: mask.clone(),
            });
        }
    }
    Ok(pairs)
}

/// A method's EPE pooled over pairs, and its time.
#[derive(Debug, Clone)]
pub struct Score {
    pub method: String,
    pub epe: Epe,
    pub pairs: usize,
    /// Seconds spent in `estimate`, all pairs.
    pub seconds: f64,
}

impl Score {
    pub fn pairs_per_second(&self) -> f64 {
        self.pairs as f64 / self.seconds.max(1e-9)
    }
}

/// Runs `method` on every pair.
pub fn score(method: &dyn FlowMethod, pairs: &[Pair]) -> Result<Score> {
    let mut total = Epe::default();
    let mut seconds = 0.0;
    for p in pairs {
        let t = Instant::now();
        let f = method.estimate(&p.a, &p.b)?;
        seconds += t.elapsed().as_secs_f64();
        let e = epe(&f, &p.gold, Some(&p.mask))
            .map_err(|r| Error::Internal(format!("{} on {}: {r}", method.name(), p.name)))?;
        total.merge(&e);
    }
    Ok(Score {
        method: method.name().to_string(),
        epe: total,
        pairs: pairs.len(),
        seconds,
    })
}

/// The "nothing moved" baseline: a zero flow for every pair.
pub struct ZeroFlow;

impl FlowMethod for ZeroFlow {
    fn name(&self) -> &str {
        "zero (no motion)"
    }
    fn estimate(&self, a: &RgbImage, _b: &RgbImage) -> Result<Flow> {
        Ok(Flow::zeros(a.width as usize, a.height as usize))
    }
}
