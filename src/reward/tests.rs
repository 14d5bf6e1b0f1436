//! Group-level scoring by hand: utility, calibration, totals, advantages, problems.

use super::*;
use crate::facs::{AuCode, AuSet};

fn set(codes: &[&str]) -> AuSet {
    AuSet::from_codes(
        &codes
            .iter()
            .map(|c| AuCode::parse(c).unwrap())
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn item(id: &str, group: &str, answer: &str, zoomed: bool, gold: Gold) -> Item {
    let text = format!("<think>.</think><answer>{answer}</answer>");
    let mut parsed = parse::parse_completion(&text);
    parsed.zoomed = zoomed;
    Item {
        rollout: Rollout {
            id: id.into(),
            group: group.into(),
            sample: format!("s-{group}"),
            parsed,
            line: 0,
        },
        gold,
    }
}

/// Weights 1 everywhere, alpha 0.5, beta 0.5, eps 1e-6: the numbers stay easy to follow.
fn unit_config() -> RewardConfig {
    RewardConfig {
        weights: config::Weights {
            format: 1.0,
            region: 1.0,
            au: 1.0,
            consistency: 1.0,
            emotion: 1.0,
            utility: 1.0,
        },
        calibration: config::Calibration {
            alpha: 0.5,
            beta: 0.5,
        },
        ..RewardConfig::default()
    }
}

const HAPPY_FULL: &str = r#"{"emotion": "happiness", "aus": ["AU6", "AU12"]}"#;
const SAD_BROWS: &str = r#"{"emotion": "sadness", "aus": ["AU1", "AU4", "AU15"]}"#;

fn happy() -> Gold {
    Gold {
        emotion: Emotion::Happiness,
        aus: set(&["AU6", "AU12"]),
    }
}

/// Group q1 (gold happiness {6, 12}):
/// - a: zoomed, perfect answer: format 1, region 1, au 1, consistency 1, emotion 1 -> task 5
/// - b: not zoomed, "sadness {1, 4, 15}": au 0, emotion 0, consistency 1 (covers all of
///   sadness); regions P = {r/l_inner_brow, glabella, r/l_mouth_corner, upper_face,
///   lower_face} (7), G = {r/l_lower_eyelid, r/l_cheek, r/l_mouth_corner, upper_face,
///   lower_face} (8), common {r/l_mouth_corner, upper_face, lower_face} (4): 8/15
///   -> task 1 + 8/15 + 0 + 1 + 0 = 38/15
/// - c: not zoomed, malformed answer -> task 0
///
/// U = 5 - mean(38/15, 0) = 5 - 19/15 = 56/15; Ubar = 0 (fresh); Uhat = 0.5 * 56/15 = 28/15.
/// totals: a = 5 + 28/15 = 103/15, b = 38/15, c = 0.
fn batch1() -> Vec<Item> {
    vec![
        item("a", "q1", HAPPY_FULL, true, happy()),
        item("b", "q1", SAD_BROWS, false, happy()),
        item(
            "c",
            "q1",
            r#"{"emotion": "happiness", "aus": ["AU6", "AU6"]}"#,
            false,
            happy(),
        ),
    ]
}

#[test]
fn a_group_by_hand() {
    let cfg = unit_config();
    let mut state = CalibrationState::default();
    let (scores, groups) = score_batch(batch1(), &cfg, &mut state);
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} != {b}");
    close(scores[0].task, 5.0);
    close(scores[1].terms.region, 8.0 / 15.0);
    close(scores[1].task, 38.0 / 15.0);
    assert_eq!(scores[2].task, 0.0);
    assert!(scores[2].format_error.as_deref().unwrap().contains("twice"));
    let g = &groups[0];
    close(g.utility.unwrap(), 56.0 / 15.0);
    close(g.uhat, 28.0 / 15.0);
    close(scores[0].terms.utility, 28.0 / 15.0);
    assert_eq!(scores[1].terms.utility, 0.0);
    close(scores[0].total, 103.0 / 15.0);
    // mean = (103 + 38 + 0) / 45 = 141/45 = 47/15;
    // deviations 56/15, -9/15, -47/15; var = (3136 + 81 + 2209) / 225 / 3 = 5426/675;
    // std = 2.8352281...; A_a = (56/15) / (std + 1e-6) = 1.3167660...
    close(g.mean, 47.0 / 15.0);
    let std = (5426.0f64 / 675.0).sqrt();
    close(g.std, std);
    close(scores[0].advantage, 56.0 / 15.0 / (std + 1e-6));
    close(scores[2].advantage, -47.0 / 15.0 / (std + 1e-6));
    assert!((scores[0].advantage - 1.316_766_0).abs() < 1e-6);
    // The EMA folds U in after the batch: Ubar = 0.5 * 0 + 0.5 * 56/15 = 28/15.
    close(state.ubar(Emotion::Happiness), 28.0 / 15.0);
    assert_eq!(state.batches, 1);
}

/// Three batches, the last resumed from saved state, against the same run in one go.
/// Batch 1: as above, Ubar_happiness = 28/15.
/// Batch 2: group q2, every rollout zoomed -> U undefined; Uhat = Ubar = 28/15 (no update).
///   a (perfect, zoomed): total = 5 + 28/15 = 103/15.
/// Batch 3: group q3: a zoomed perfect (task 5), b not zoomed perfect (task 5): U = 0;
///   Uhat = 0.5 * 0 + 0.5 * 28/15 = 14/15; afterwards Ubar = 0.5 * 28/15 + 0.5 * 0 = 14/15.
#[test]
fn ema_over_three_batches_with_resume() {
    let cfg = unit_config();
    let batch2 = || {
        vec![
            item("a", "q2", HAPPY_FULL, true, happy()),
            item("b", "q2", HAPPY_FULL, true, happy()),
        ]
    };
    let batch3 = || {
        vec![
            item("a", "q3", HAPPY_FULL, true, happy()),
            item("b", "q3", HAPPY_FULL, false, happy()),
        ]
    };
    let mut state = CalibrationState::default();
    score_batch(batch1(), &cfg, &mut state);
    let (s2, g2) = score_batch(batch2(), &cfg, &mut state);
    assert_eq!(g2[0].utility, None);
    assert!((g2[0].uhat - 28.0 / 15.0).abs() < 1e-12);
    assert!((s2[0].total - 103.0 / 15.0).abs() < 1e-12);
    assert_eq!(s2[0].advantage, 0.0);
    assert!((state.ubar(Emotion::Happiness) - 28.0 / 15.0).abs() < 1e-12);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    state.save(&path).unwrap();
    let mut resumed = CalibrationState::load_or_default(&path).unwrap();

    let (s3, g3) = score_batch(batch3(), &cfg, &mut state);
    let (r3, _) = score_batch(batch3(), &cfg, &mut resumed);
    assert!((g3[0].uhat - 14.0 / 15.0).abs() < 1e-12);
    assert!((s3[0].total - (5.0 + 14.0 / 15.0)).abs() < 1e-12);
    assert_eq!(s3[1].total, 5.0);
    assert_eq!(
        s3.iter().map(|s| s.total).collect::<Vec<_>>(),
        r3.iter().map(|s| s.total).collect::<Vec<_>>()
    );
    assert!((state.ubar(Emotion::Happiness) - 14.0 / 15.0).abs() < 1e-12);
    assert_eq!(state, resumed);
    assert_eq!(state.batches, 3);
}

#[test]
fn problems_are_counted_with_line_numbers() {
    let labels = "{\"sample\": \"s1\", \"emotion\": \"happy\", \"aus\": [\"AU6\", \"AU12\"]}\n{\"sample\": \"s2\", \"emotion\": \"joyful\", \"aus\": []}\n";
    let rollouts = [
        r#"{"id": "r1", "group": "q1", "sample": "s1", "completion": "<think>.</think><answer>{\"emotion\": \"happy\", \"aus\": [\"AU12\"]}</answer>", "zoomed": true}"#,
        r#"{"id": "r2", "group": "q1", "sample": "s1", "completion": "x"#,
        r#"{"id": "r3", "group": "q2", "sample": "s2", "completion": "x"}"#,
        r#"{"id": "r4", "group": "q1", "sample": "s9", "completion": "x"}"#,
    ]
    .join("\n");
    let cfg = RewardConfig::default();
    let run_with = |on| {
        let mut state = CalibrationState::default();
        let labels = io::jsonl_lines(labels.as_bytes()).map(|(n, l)| (n, io::parse_label(l)));
        let rollouts =
            io::jsonl_lines(rollouts.as_bytes()).map(|(n, l)| (n, io::parse_rollout(l, n)));
        run(labels, "L.jsonl", rollouts, "R.jsonl", &cfg, &mut state, on)
    };
    let r = run_with(OnProblem::Skip).unwrap();
    assert_eq!(
        (
            r.summary.rollouts,
            r.summary.skipped_rollouts,
            r.summary.skipped_labels
        ),
        (1, 3, 1)
    );
    let lines: Vec<(&str, usize)> = r
        .problems
        .iter()
        .map(|p| (p.source.as_str(), p.line))
        .collect();
    assert_eq!(
        lines,
        [
            ("L.jsonl", 2),
            ("R.jsonl", 2),
            ("R.jsonl", 3),
            ("R.jsonl", 4),
            ("R.jsonl", 3)
        ]
    );
    assert!(
        r.problems[0].reason.contains("unknown emotion"),
        "{}",
        r.problems[0]
    );
    assert!(
        r.problems[2].reason.contains("L.jsonl line 2 was skipped"),
        "{}",
        r.problems[2]
    );
    assert!(
        r.problems[3].reason.contains("holds sample"),
        "{}",
        r.problems[3]
    );
    assert!(
        r.problems[4].reason.contains("no rollout left"),
        "{}",
        r.problems[4]
    );
    let first = run_with(OnProblem::Fail).unwrap_err();
    assert_eq!((first.source.as_str(), first.line), ("L.jsonl", 2));
}
