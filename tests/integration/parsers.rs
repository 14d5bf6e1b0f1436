//! Property tests of the parsers that read user files: a valid file damaged anywhere (bytes
//! changed, cut short) is read or refused with an error naming the file, never a panic, and
//! for line-based files the lines the damage did not touch are read as before. Each property
//! runs on [`CASES`] damages drawn from a fixed seed (the crate's own generator, so the cases
//! are the same on every machine); a failure prints the damage.

use std::path::Path;

use actfer::synth::rng::Rng;

use actfer::agent::trace::Trace;
use actfer::reward::io::{parse_label, parse_rollouts};
use actfer::reward::RewardConfig;

/// Damage to a file: bytes set at positions (taken modulo the length), then a cut.
#[derive(Debug, Clone)]
struct Damage {
    bytes: Vec<(usize, u8)>,
    cut: Option<usize>,
}

/// Damages drawn per property.
const CASES: usize = 96;

/// The damages of a property: the first case none, then up to 5 bytes changed (to any
/// value, often a digit, quote or brace, which parsers care about) and a cut in half the
/// cases, at any length (small ones often).
fn damages(seed: u64) -> Vec<Damage> {
    let mut rng = Rng::new(seed);
    let mut out = vec![Damage {
        bytes: vec![],
        cut: None,
    }];
    let special = b"0123456789\"{}[],:-.eE \n\\";
    for _ in 1..CASES {
        let n = rng.int(0, 6);
        let bytes = (0..n)
            .map(|_| {
                let at = rng.next_u64() as usize;
                let b = if rng.chance(0.5) {
                    *rng.pick(special)
                } else {
                    rng.next_u64() as u8
                };
                (at, b)
            })
            .collect();
        let cut = rng.chance(0.5).then(|| {
            if rng.chance(0.3) {
                rng.int(0, 64)
            } else {
                rng.next_u64() as usize
            }
        });
        out.push(Damage { bytes, cut });
    }
    out
}

/// Runs `property` on every damage of [`damages`], naming the damage of a failure.
fn for_damages(seed: u64, property: impl Fn(&Damage) -> Result<(), String>) {
    for d in damages(seed) {
        if let Err(e) = property(&d) {
            panic!("{e}\n(damage: {d:?})");
        }
    }
}

macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err(format!($($what)+));
        }
    };
}

impl Damage {
    fn apply(&self, good: &[u8]) -> Vec<u8> {
        let mut v = good.to_vec();
        for &(at, b) in &self.bytes {
            let k = at % v.len();
            v[k] = b;
        }
        if let Some(cut) = self.cut {
            v.truncate(cut % (v.len() + 1));
        }
        v
    }
}

/// Writes `bytes` as `name` in a fresh folder and reads it with `read`: an error must name
/// the file.
fn read_damaged<T>(
    name: &str,
    bytes: &[u8],
    read: impl Fn(&Path) -> actfer::Result<T>,
) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    if let Err(e) = read(&path) {
        let said = e.to_string();
        check!(said.contains(name), "{said}");
        check!(e.exit_code() == 2, "exit {} for {said}", e.exit_code());
    }
    Ok(())
}

const ROLLOUTS: &str = r#"{"id": "a", "group": "q", "sample": "s1", "completion": "<think>look</think>\n<answer>{\"emotion\": \"happy\", \"aus\": [\"AU6\", \"AU12\"]}</answer>", "zoomed": true}
{"id": "b", "group": "q", "sample": "s1", "completion": "nothing", "zoomed": false}
{"id": "c", "group": "r", "sample": "s2", "completion": "{\"tool\": \"final_answer\", \"thought\": \"AU4 moved.\", \"args\": {\"emotion\": \"anger\", \"aus\": [\"AU4\"], \"text\": \"\"}}", "zoomed": false}
"#;

const LABELS: &str = r#"{"sample": "s1", "emotion": "happiness", "aus": ["AU6", "AU12"]}
{"sample": "s2", "emotion": "Sad", "aus": ["AU1", "AU4", "AU15"]}
"#;

const CONFIG: &str = "[weights]\nformat = 1.0\nregion = 1.0\nau = 1.0\nconsistency = 1.0\nemotion = 1.0\nutility = 1.0\nwords = 1.0\n[calibration]\nalpha = 0.5\nbeta = 0.5\n";

/// A 3x2 flow in the Middlebury `.flo` layout.
fn flo() -> Vec<u8> {
    let mut v = b"PIEH".to_vec();
    v.extend_from_slice(&3i32.to_le_bytes());
    v.extend_from_slice(&2i32.to_le_bytes());
    for k in 0..12 {
        v.extend_from_slice(&(k as f32 * 0.25).to_le_bytes());
    }
    v
}

/// The head of the default language model (its header holds the tokenizer: about 2 MB).
fn gguf_head() -> &'static [u8] {
    static HEAD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
        let path = actfer::llm::resolve(actfer::llm::DEFAULT_MODEL).unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        bytes.truncate(4 << 20);
        bytes
    })
}

#[test]
fn damaged_rollouts_keep_their_untouched_lines() {
    let good = parse_rollouts(ROLLOUTS.as_bytes());
    for_damages(1, |d| {
        let bad = d.apply(ROLLOUTS.as_bytes());
        let parsed = parse_rollouts(&bad);
        // a line whose bytes are all as they were parses as it did
        let text = String::from_utf8_lossy(&bad).into_owned();
        for (n, line) in ROLLOUTS.lines().enumerate() {
            if text.split('\n').nth(n) == Some(line) {
                let was = good.iter().find(|(k, _)| *k == n + 1).unwrap();
                let now = parsed.iter().find(|(k, _)| *k == n + 1);
                check!(
                    now.is_some_and(|now| format!("{:?}", was.1) == format!("{:?}", now.1)),
                    "line {} was {:?}, now {now:?}",
                    n + 1,
                    was.1
                );
            }
        }
        for (n, r) in &parsed {
            if let Err(e) = r {
                check!(!e.trim().is_empty(), "line {n}: an empty error");
            }
        }
        Ok(())
    });
}

#[test]
fn damaged_labels_are_read_or_refused() {
    for_damages(2, |d| {
        let bad = d.apply(LABELS.as_bytes());
        for line in bad.split(|&b| b == b'\n') {
            if let Err(e) = parse_label(line) {
                check!(!e.trim().is_empty(), "an empty error");
            }
        }
        Ok(())
    });
}

#[test]
fn damaged_reward_configs_are_refused_by_name() {
    for_damages(3, |d| {
        read_damaged(
            "reward.toml",
            &d.apply(CONFIG.as_bytes()),
            RewardConfig::load,
        )
    });
}

#[test]
fn damaged_flo_files_are_refused_by_name() {
    for_damages(4, |d| {
        read_damaged("field.flo", &d.apply(&flo()), |p| {
            let f = actfer::eval::flow::read_flo(p)?;
            assert_eq!(f.uv.len(), f.width * f.height * 2);
            Ok(())
        })
    });
}

#[test]
fn damaged_traces_are_refused_by_name() {
    let good = include_bytes!("../data/trace_demo.json");
    for_damages(5, |d| {
        read_damaged("trace.json", &d.apply(good), |p| {
            let read = Trace::read(p);
            // the undamaged file is a trace
            assert!(read.is_ok() || !d.bytes.is_empty() || d.cut.is_some());
            read
        })
    });
}

#[test]
fn damaged_synthme_labels_are_refused_by_name() {
    let good = include_bytes!("../data/synthme_labels.json");
    for_damages(6, |d| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labels.json"), d.apply(good)).unwrap();
        match actfer::synth::labels::Labels::read(dir.path()) {
            Ok(_) => Ok(()),
            Err(_) if d.bytes.is_empty() && d.cut.is_none() => Err("the undamaged file".into()),
            Err(e) => {
                check!(e.to_string().contains("labels.json"), "{e}");
                Ok(())
            }
        }
    });
}

#[test]
fn damaged_gguf_headers_are_refused_by_name() {
    for_damages(7, |d| {
        read_damaged("model.gguf", &d.apply(gguf_head()), |p| {
            actfer::llm::TextModel::load(p).map(|_| ())
        })
    });
}
