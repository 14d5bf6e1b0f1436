//! Which clip and question each query of a step asks, and with which sampling seeds its
//! rollouts draw: functions of the run's seed and the step alone, so a resumed run asks what the
//! uninterrupted run would have.
//!
//! Query `k` (from 0, counted over the whole run: step `s` holds `s * batch .. (s + 1) *
//! batch`) takes clip `order_p[k mod n]` of the `n` expression clips, where `order_p` is pass
//! `p = k div n`'s shuffle: every clip once per pass, in a new order each pass.

use crate::facs::{AuCode, AuSet};
use crate::reward::Gold;
use crate::synth::labels::ClipLabel;
use crate::synth::rng::Rng;

/// Stream tags, apart from each other.
const ORDER: u64 = 1 << 32;
const QUESTION: u64 = 2 << 32;
const SAMPLING: u64 = 3 << 32;

/// One query: a clip and a question, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Its number over the run.
    pub key: u64,
    pub clip: usize,
    pub question: usize,
}

/// The `batch` queries of step `step` over `clips` clips and `questions` questions.
pub fn step_queries(
    seed: u64,
    step: usize,
    batch: usize,
    clips: usize,
    questions: usize,
) -> Vec<Query> {
    let root = Rng::new(seed);
    let n = clips.max(1);
    let mut order: Option<(usize, Vec<usize>)> = None;
    (0..batch)
        .map(|b| {
            let k = step * batch + b;
            let pass = k / n;
            if order.as_ref().is_none_or(|(p, _)| *p != pass) {
                let mut o: Vec<usize> = (0..n).collect();
                root.derive(ORDER + pass as u64).shuffle(&mut o);
                order = Some((pass, o));
            }
            let clip = order.as_ref().map_or(0, |(_, o)| o[k % n]);
            let question = root
                .derive(QUESTION + k as u64)
                .int(0, questions.saturating_sub(1));
            Query {
                key: k as u64,
                clip,
                question,
            }
        })
        .collect()
}

/// The sampling stream of rollout `g` of query `key`.
pub fn stream(seed: u64, key: u64, g: usize) -> Rng {
    Rng::new(seed).derive(SAMPLING + key).derive(g as u64)
}

/// A clip's gold label for the rewards: its expression's emotion and AUs (with their sides).
pub fn gold(clip: &ClipLabel) -> std::result::Result<Gold, String> {
    let event = clip
        .events
        .first()
        .ok_or_else(|| format!("clip {} has no expression", clip.id))?;
    let codes = event
        .aus
        .iter()
        .map(|a| AuCode::new(a.au, a.side.map(Into::into)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("clip {}: {e}", clip.id))?;
    Ok(Gold {
        emotion: event.emotion,
        aus: AuSet::from_codes(&codes).map_err(|e| format!("clip {}: {e}", clip.id))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pass_asks_every_clip_once() {
        // 5 clips, batches of 2: steps 0..5 hold queries 0..10, two passes
        let clips: Vec<usize> = (0..5)
            .flat_map(|s| step_queries(7, s, 2, 5, 3))
            .map(|q| q.clip)
            .collect();
        let (first, second) = clips.split_at(5);
        for pass in [first, second] {
            let mut p = pass.to_vec();
            p.sort_unstable();
            assert_eq!(p, [0, 1, 2, 3, 4]);
        }
        assert_ne!(first, second, "each pass has its own order");
        // a step's queries depend on the seed and the step only
        assert_eq!(step_queries(7, 3, 2, 5, 3), step_queries(7, 3, 2, 5, 3));
        assert_ne!(step_queries(7, 3, 2, 5, 3), step_queries(8, 3, 2, 5, 3));
        let q = step_queries(7, 4, 2, 5, 3);
        assert_eq!((q[0].key, q[1].key), (8, 9));
        assert!(q.iter().all(|q| q.question < 3));
    }

    #[test]
    fn rollouts_draw_apart() {
        let a = stream(1, 4, 0).next_u64();
        assert_eq!(a, stream(1, 4, 0).next_u64());
        assert_ne!(a, stream(1, 4, 1).next_u64());
        assert_ne!(a, stream(1, 5, 0).next_u64());
    }
}
