//! What a clip will show, drawn from its random stream before anything is rendered: kind,
//! emotion and AUs, timing, amplitude, blinks and nuisances. Every range the generator uses
//! is a constant here.

use super::labels::{AuLabel, Blink, Event, HeadMotion, Kind, Light, Nuisance, Side, Wave};
use super::rng::Rng;
use super::templates::template_aus;
use crate::facs::emotion::Emotion;

/// Micro-expression duration, onset to offset, seconds.
pub const MICRO_DURATION_S: (f32, f32) = (0.2, 0.5);
/// Macro-expression duration, seconds.
pub const MACRO_DURATION_S: (f32, f32) = (0.5, 4.0);
/// Apex displacement of the most moving landmark at a 128-px face width, px.
pub const MICRO_AMPLITUDE_128: (f32, f32) = (0.5, 3.0);
pub const MACRO_AMPLITUDE_128: (f32, f32) = (4.0, 15.0);
/// Onset -> apex as a share of the duration.
pub const RISE_SHARE: (f32, f32) = (0.3, 0.5);
/// Still frames before the onset and after the offset of a short clip, seconds.
pub const LEAD_S: (f32, f32) = (0.15, 0.4);
/// Length of a clip without expression, seconds.
pub const NONE_DURATION_S: (f32, f32) = (0.6, 1.2);
/// Long videos: length, seconds, and the number of expressions.
pub const LONG_DURATION_S: (f32, f32) = (20.0, 60.0);
pub const LONG_EVENTS: (usize, usize) = (0, 5);
/// Shortest still gap between two expressions of a long video, seconds.
pub const LONG_GAP_S: f32 = 1.0;
/// Relative weight of each AU of an expression before the amplitude is set.
pub const AU_WEIGHT: (f32, f32) = (0.6, 1.0);
/// Short clips: the share of micro, macro and no-expression clips.
pub const KIND_SHARES: [(Kind, f32); 3] =
    [(Kind::Micro, 0.6), (Kind::Macro, 0.25), (Kind::None, 0.15)];
/// A long video's expression is micro with this probability.
pub const LONG_MICRO_SHARE: f32 = 0.5;

/// Blinks: duration, seconds (as short as a micro-expression: a distractor), and the time
/// between blinks in long videos.
pub const BLINK_DURATION_S: (f32, f32) = (0.1, 0.3);
pub const BLINK_INTERVAL_S: (f32, f32) = (2.0, 6.0);
/// Blink closure: 1 closes the lids to the template's 5 % gap.
pub const BLINK_INTENSITY: (f32, f32) = (0.7, 1.0);

/// How often each nuisance is applied to a clip when its switch is on.
pub const HEAD_SHARE: f32 = 0.7;
pub const LIGHT_SHARE: f32 = 0.5;
pub const NOISE_SHARE: f32 = 0.7;
pub const JPEG_SHARE: f32 = 0.5;
pub const BLINK_SHARE: f32 = 0.3;
/// Nuisance strengths: largest head rotation (degrees), translation (px at a 128-px frame),
/// relative scale change; head motion frequencies (Hz); light gain and tilt; noise sigma
/// (grey levels); JPEG quality.
pub const HEAD_ROTATION_DEG: f32 = 1.5;
pub const HEAD_SHIFT_128: f32 = 1.5;
pub const HEAD_SCALE: f32 = 0.01;
pub const HEAD_FREQUENCY_HZ: (f32, f32) = (0.1, 0.8);
pub const LIGHT_GAIN: f32 = 0.15;
pub const LIGHT_TILT: f32 = 0.2;
pub const NOISE_SIGMA: (f32, f32) = (1.0, 4.0);
pub const JPEG_QUALITY: (usize, usize) = (70, 95);

/// Which nuisances may be used (the CLI's `--no-*` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Switches {
    pub head: bool,
    pub light: bool,
    pub noise: bool,
    pub jpeg: bool,
    pub blinks: bool,
    /// Clips with no expression among the short clips.
    pub neutral: bool,
}

impl Switches {
    pub const ALL: Switches = Switches {
        head: true,
        light: true,
        noise: true,
        jpeg: true,
        blinks: true,
        neutral: true,
    };
    pub const NONE: Switches = Switches {
        head: false,
        light: false,
        noise: false,
        jpeg: false,
        blinks: false,
        neutral: false,
    };
}

/// A drawn clip, before rendering: amplitudes are still targets (`apex_displacement_128`);
/// the renderer sets the intensities that reach them.
#[derive(Debug, Clone)]
pub struct ClipSpec {
    pub kind: Kind,
    pub frames: usize,
    pub events: Vec<Event>,
    pub blinks: Vec<Blink>,
    pub nuisance: Nuisance,
}

/// The emotions a clip can show: every label but neutral (that is the `none` kind), in
/// [`Emotion::ALL`]'s order.
const EMOTIONS: [Emotion; 7] = {
    let mut e = [Emotion::Happiness; 7];
    let mut i = 0;
    while i < 7 {
        e[i] = Emotion::ALL[i];
        i += 1;
    }
    e
};

fn seconds(rng: &mut Rng, r: (f32, f32)) -> f32 {
    rng.range(r.0, r.1)
}

/// Frames of `s` seconds at `fps`, at least `min`.
fn frames(s: f32, fps: f32, min: usize) -> usize {
    ((s * fps).round() as usize).max(min)
}

/// An expression of `kind` starting at frame `onset`.
fn draw_event(rng: &mut Rng, kind: Kind, onset: usize, fps: f32) -> Event {
    let micro = kind == Kind::Micro;
    let duration = frames(
        seconds(
            rng,
            if micro {
                MICRO_DURATION_S
            } else {
                MACRO_DURATION_S
            },
        ),
        fps,
        2,
    );
    let rise =
        ((duration as f32 * seconds(rng, RISE_SHARE)).round() as usize).clamp(1, duration - 1);
    let emotion = *rng.pick(&EMOTIONS);
    let available = template_aus();
    let full = emotion.prototype();
    let mut proto: Vec<u8> = full
        .iter()
        .copied()
        .filter(|a| available.contains(a))
        .collect();
    // Micro-expressions are often partial: keep at least half of the prototype (the labels
    // stay compatible with the emotion under the prototype rule); macro ones are full.
    let least = full.len().div_ceil(2).min(proto.len());
    if micro && proto.len() > least {
        rng.shuffle(&mut proto);
        let keep = rng.int(least, proto.len());
        proto.truncate(keep);
        proto.sort_unstable();
    }
    let side = if emotion == Emotion::Contempt {
        Some(if rng.chance(0.5) {
            Side::Left
        } else {
            Side::Right
        })
    } else {
        None
    };
    let aus = proto
        .into_iter()
        .map(|au| AuLabel {
            au,
            side,
            intensity: rng.range(AU_WEIGHT.0, AU_WEIGHT.1),
        })
        .collect();
    let amplitude = seconds(
        rng,
        if micro {
            MICRO_AMPLITUDE_128
        } else {
            MACRO_AMPLITUDE_128
        },
    );
    Event {
        kind,
        emotion,
        me_class: emotion.me_class().expect("expressions are not neutral"),
        aus,
        onset,
        apex: onset + rise,
        offset: onset + duration,
        apex_displacement_px: 0.0,
        apex_displacement_128: amplitude,
    }
}

fn draw_blink(rng: &mut Rng, onset: usize, fps: f32) -> Blink {
    let d = frames(seconds(rng, BLINK_DURATION_S), fps, 2);
    let rise = ((d as f32 * 0.4).round() as usize).clamp(1, d - 1);
    Blink {
        onset,
        apex: onset + rise,
        offset: onset + d,
        intensity: rng.range(BLINK_INTENSITY.0, BLINK_INTENSITY.1),
    }
}

fn wave(rng: &mut Rng, amplitude: f32) -> [Wave; 2] {
    std::array::from_fn(|k| Wave {
        // The two components share the amplitude budget.
        amplitude: amplitude * if k == 0 { 0.65 } else { 0.35 } * rng.range(0.5, 1.0),
        frequency_hz: rng.range(HEAD_FREQUENCY_HZ.0, HEAD_FREQUENCY_HZ.1),
        phase: rng.range(0.0, std::f32::consts::TAU),
    })
}

fn draw_nuisance(rng: &mut Rng, on: &Switches, size: u32) -> Nuisance {
    let px = size as f32 / 128.0;
    let head = (on.head && rng.chance(HEAD_SHARE)).then(|| HeadMotion {
        rotation_deg: wave(rng, HEAD_ROTATION_DEG),
        shift_x_px: wave(rng, HEAD_SHIFT_128 * px),
        shift_y_px: wave(rng, HEAD_SHIFT_128 * px),
        scale: wave(rng, HEAD_SCALE),
    });
    let light = (on.light && rng.chance(LIGHT_SHARE)).then(|| Light {
        gain: rng.range(-LIGHT_GAIN, LIGHT_GAIN),
        tilt: rng.range(-LIGHT_TILT, LIGHT_TILT),
    });
    let noise_sigma =
        (on.noise && rng.chance(NOISE_SHARE)).then(|| rng.range(NOISE_SIGMA.0, NOISE_SIGMA.1));
    let jpeg_quality =
        (on.jpeg && rng.chance(JPEG_SHARE)).then(|| rng.int(JPEG_QUALITY.0, JPEG_QUALITY.1) as u8);
    Nuisance {
        head,
        light,
        noise_sigma,
        jpeg_quality,
    }
}

/// A short clip: one micro or macro expression, or none.
pub fn draw_clip(rng: &mut Rng, on: &Switches, fps: f32, size: u32) -> ClipSpec {
    let shares: Vec<(Kind, f32)> = KIND_SHARES
        .iter()
        .copied()
        .filter(|(k, _)| on.neutral || *k != Kind::None)
        .collect();
    let total: f32 = shares.iter().map(|s| s.1).sum();
    let mut u = rng.range(0.0, total);
    let mut kind = shares[0].0;
    for (k, s) in &shares {
        kind = *k;
        if u < *s {
            break;
        }
        u -= s;
    }
    let lead = frames(seconds(rng, LEAD_S), fps, 1);
    let (events, frames_total) = if kind == Kind::None {
        (Vec::new(), frames(seconds(rng, NONE_DURATION_S), fps, 2))
    } else {
        let e = draw_event(rng, kind, lead, fps);
        let tail = frames(seconds(rng, LEAD_S), fps, 1);
        let n = e.offset + tail + 1;
        (vec![e], n)
    };
    let mut blinks = Vec::new();
    if on.blinks && rng.chance(BLINK_SHARE) {
        let b = draw_blink(rng, 0, fps);
        let span = b.offset - b.onset;
        if frames_total > span + 1 {
            let start = rng.int(0, frames_total - span - 1);
            blinks.push(draw_blink_at(b, start));
        }
    }
    let nuisance = draw_nuisance(rng, on, size);
    ClipSpec {
        kind,
        frames: frames_total,
        events,
        blinks,
        nuisance,
    }
}

fn draw_blink_at(b: Blink, start: usize) -> Blink {
    Blink {
        onset: start,
        apex: start + (b.apex - b.onset),
        offset: start + (b.offset - b.onset),
        intensity: b.intensity,
    }
}

/// A long video: 20-60 s, 0-5 expressions (micro or macro) apart by at least
/// [`LONG_GAP_S`], blinks every 2-6 s.
pub fn draw_long(rng: &mut Rng, on: &Switches, fps: f32, size: u32) -> ClipSpec {
    let total = frames(seconds(rng, LONG_DURATION_S), fps, 2);
    let wanted = rng.int(LONG_EVENTS.0, LONG_EVENTS.1);
    let gap = frames(LONG_GAP_S, fps, 1);
    let mut events = Vec::new();
    // Place expressions left to right: each starts after a random share of the room left.
    let mut cursor = gap;
    for k in 0..wanted {
        let kind = if rng.chance(LONG_MICRO_SHARE) {
            Kind::Micro
        } else {
            Kind::Macro
        };
        let probe = draw_event(rng, kind, 0, fps);
        let len = probe.offset;
        let remaining = wanted - k;
        let room = total.saturating_sub(cursor + gap);
        if room < len {
            break;
        }
        let slack = room - len;
        let start = cursor + rng.int(0, slack / remaining);
        let mut e = probe;
        e.onset += start;
        e.apex += start;
        e.offset += start;
        cursor = e.offset + gap;
        events.push(e);
    }
    let mut blinks = Vec::new();
    if on.blinks {
        let mut t = frames(seconds(rng, BLINK_INTERVAL_S), fps, 1);
        loop {
            let b = draw_blink(rng, t, fps);
            if b.offset >= total {
                break;
            }
            t = b.offset + frames(seconds(rng, BLINK_INTERVAL_S), fps, 1);
            blinks.push(b);
        }
    }
    let nuisance = draw_nuisance(rng, on, size);
    ClipSpec {
        kind: Kind::Long,
        frames: total,
        events,
        blinks,
        nuisance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_clips_respect_the_ranges() {
        let mut rng = Rng::new(11);
        let mut kinds = [0usize; 3];
        for _ in 0..400 {
            for fps in [30.0, 200.0] {
                let c = draw_clip(&mut rng, &Switches::ALL, fps, 128);
                match c.kind {
                    Kind::Micro => kinds[0] += 1,
                    Kind::Macro => kinds[1] += 1,
                    _ => kinds[2] += 1,
                }
                for e in &c.events {
                    assert!(e.onset < e.apex && e.apex < e.offset && e.offset < c.frames);
                    let d = (e.offset - e.onset) as f32 / fps;
                    let r = if e.kind == Kind::Micro {
                        MICRO_DURATION_S
                    } else {
                        MACRO_DURATION_S
                    };
                    assert!(d >= r.0 - 0.5 / fps && d <= r.1 + 0.5 / fps, "{d}");
                    let mask =
                        crate::facs::au::mask(&e.aus.iter().map(|a| a.au).collect::<Vec<_>>());
                    assert!(e.emotion.compatible_with(mask), "{:?}", e);
                }
                for b in &c.blinks {
                    assert!(b.onset < b.apex && b.apex < b.offset && b.offset < c.frames);
                }
            }
        }
        // 800 clips at shares 0.6 / 0.25 / 0.15.
        assert!(
            kinds[0] > 400 && kinds[1] > 140 && kinds[2] > 70,
            "{kinds:?}"
        );
    }

    #[test]
    fn long_videos_keep_expressions_apart() {
        let mut rng = Rng::new(5);
        let mut counts = [0usize; 6];
        for _ in 0..100 {
            let c = draw_long(&mut rng, &Switches::ALL, 30.0, 128);
            assert!((600..=1800).contains(&c.frames));
            counts[c.events.len()] += 1;
            for w in c.events.windows(2) {
                assert!(w[1].onset >= w[0].offset + 30);
            }
            assert!(c.blinks.len() >= 3, "{}", c.blinks.len());
        }
        assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
        let none = draw_long(&mut rng, &Switches::NONE, 30.0, 128);
        assert!(none.blinks.is_empty() && none.nuisance == Nuisance::default());
    }
}
