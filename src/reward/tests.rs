//! Group-level scoring by hand: utility, calibration, totals, advantages, problems; the words
//! term on completions and traces.

use super::*;
use crate::agent::words::Vocabulary;
use crate::facs::{AuCode, AuSet};

/// The English words these tests write (the catalogue's own words come with any vocabulary).
fn vocab() -> Vocabulary {
    Vocabulary::from_words(
        "the a at and look lip corners rise brows lower down from to frame inner outer pull \
         motion clip shows was strongest on"
            .split(' '),
    )
}

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
            words: 1.0,
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

/// Group q1 (gold happiness {6, 12}); every thought is "." (no word: words 1):
/// - a: zoomed, perfect answer: format 1, region 1, au 1, consistency 1, emotion 1, words 1
///   -> task 6
/// - b: not zoomed, "sadness {1, 4, 15}": au 0, emotion 0, consistency 1 (covers all of
///   sadness); regions P = {r/l_inner_brow, glabella, r/l_mouth_corner, upper_face,
///   lower_face} (7), G = {r/l_lower_eyelid, r/l_cheek, r/l_mouth_corner, upper_face,
///   lower_face} (8), common {r/l_mouth_corner, upper_face, lower_face} (4): 8/15
///   -> task 1 + 8/15 + 0 + 1 + 0 + 1 = 53/15
/// - c: not zoomed, malformed answer -> task 0 (words too)
///
/// U = 6 - mean(53/15, 0) = 6 - 53/30 = 127/30; Ubar = 0 (fresh); Uhat = 0.5 * 127/30 = 127/60.
/// totals: a = 6 + 127/60 = 487/60, b = 53/15, c = 0.
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
    let (scores, groups) = score_batch(batch1(), &cfg, &mut state, Some(&vocab()));
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} != {b}");
    close(scores[0].task, 6.0);
    close(scores[1].terms.region, 8.0 / 15.0);
    close(scores[1].terms.words, 1.0);
    close(scores[1].task, 53.0 / 15.0);
    assert_eq!((scores[2].task, scores[2].terms.words), (0.0, 0.0));
    assert!(scores[2].format_error.as_deref().unwrap().contains("twice"));
    let g = &groups[0];
    close(g.utility.unwrap(), 127.0 / 30.0);
    close(g.uhat, 127.0 / 60.0);
    close(scores[0].terms.utility, 127.0 / 60.0);
    assert_eq!(scores[1].terms.utility, 0.0);
    close(scores[0].total, 487.0 / 60.0);
    // mean = (487 + 212 + 0) / 180 = 233/60;
    // deviations 254/60, -21/60, -233/60; var = (64516 + 441 + 54289) / 3600 / 3 = 59623/5400;
    // std = 3.3228446...; A_a = (127/30) / (std + 1e-6) = 1.2740084...
    close(g.mean, 233.0 / 60.0);
    let std = (59623.0f64 / 5400.0).sqrt();
    close(g.std, std);
    close(scores[0].advantage, 127.0 / 30.0 / (std + 1e-6));
    close(scores[2].advantage, -233.0 / 60.0 / (std + 1e-6));
    assert!((scores[0].advantage - 1.274_008_4).abs() < 1e-6);
    // The EMA folds U in after the batch: Ubar = 0.5 * 0 + 0.5 * 127/30 = 127/60.
    close(state.ubar(Emotion::Happiness), 127.0 / 60.0);
    assert_eq!(state.batches, 1);
}

/// Three batches, the last resumed from saved state, against the same run in one go.
/// Batch 1: as above, Ubar_happiness = 127/60.
/// Batch 2: group q2, every rollout zoomed -> U undefined; Uhat = Ubar = 127/60 (no update).
///   a (perfect, zoomed): total = 6 + 127/60 = 487/60.
/// Batch 3: group q3: a zoomed perfect (task 6), b not zoomed perfect (task 6): U = 0;
///   Uhat = 0.5 * 0 + 0.5 * 127/60 = 127/120; afterwards Ubar = 0.5 * 127/60 = 127/120.
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
    let v = vocab();
    let mut state = CalibrationState::default();
    score_batch(batch1(), &cfg, &mut state, Some(&v));
    let (s2, g2) = score_batch(batch2(), &cfg, &mut state, Some(&v));
    assert_eq!(g2[0].utility, None);
    assert!((g2[0].uhat - 127.0 / 60.0).abs() < 1e-12);
    assert!((s2[0].total - 487.0 / 60.0).abs() < 1e-12);
    assert_eq!(s2[0].advantage, 0.0);
    assert!((state.ubar(Emotion::Happiness) - 127.0 / 60.0).abs() < 1e-12);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    state.save(&path).unwrap();
    let mut resumed = CalibrationState::load_or_default(&path).unwrap();

    let (s3, g3) = score_batch(batch3(), &cfg, &mut state, Some(&v));
    let (r3, _) = score_batch(batch3(), &cfg, &mut resumed, Some(&v));
    assert!((g3[0].uhat - 127.0 / 120.0).abs() < 1e-12);
    assert!((s3[0].total - (6.0 + 127.0 / 120.0)).abs() < 1e-12);
    assert_eq!(s3[1].total, 6.0);
    assert_eq!(
        s3.iter().map(|s| s.total).collect::<Vec<_>>(),
        r3.iter().map(|s| s.total).collect::<Vec<_>>()
    );
    assert!((state.ubar(Emotion::Happiness) - 127.0 / 120.0).abs() < 1e-12);
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
        let inputs = Inputs {
            labels: io::jsonl_lines(labels.as_bytes()).map(|(n, l)| (n, io::parse_label(l))),
            labels_source: "L.jsonl".into(),
            rollouts: io::jsonl_lines(rollouts.as_bytes())
                .map(|(n, l)| (n, io::parse_rollout(l, n))),
            rollouts_source: "R.jsonl".into(),
        };
        run(inputs, &cfg, &mut state, Some(&vocab()), on)
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

/// One rollout of a completion against gold sadness {1, 4, 15}, scored alone.
fn words_of(completion: &str, vocab: Option<&Vocabulary>) -> f64 {
    let sad = Gold {
        emotion: Emotion::Sadness,
        aus: set(&["AU1", "AU4", "AU15"]),
    };
    let item = Item {
        rollout: Rollout {
            id: "r".into(),
            group: "q".into(),
            sample: "s".into(),
            parsed: parse::parse_completion(completion),
            line: 0,
        },
        gold: sad,
    };
    let mut state = CalibrationState::default();
    let (scores, _) = score_batch(vec![item], &unit_config(), &mut state, vocab);
    scores[0].terms.words
}

const SAD_ANSWER: &str = r#"{"emotion": "sadness", "aus": ["AU1", "AU4", "AU15"], "text": "The inner brows rise and lower: sadness."}"#;

#[test]
fn words_of_completions() {
    let v = vocab();
    let r1 = |think: &str| format!("<think>{think}</think><answer>{SAD_ANSWER}</answer>");
    // a clean think and a clean text
    assert_eq!(words_of(&r1("Look at the brows."), Some(&v)), 1.0);
    // the think names another emotion (a smile reads as happiness): 1 of 2 texts passes
    assert_eq!(
        words_of(&r1("The lip corners rise: a smile."), Some(&v)),
        0.5
    );
    assert_eq!(words_of(&r1("Look at the brows: anger."), Some(&v)), 0.5);
    // a non-word, and a name outside the catalogue
    assert_eq!(words_of(&r1("Look at the Lipscorner."), Some(&v)), 0.5);
    assert_eq!(words_of(&r1("Look at AU99."), Some(&v)), 0.5);
    // a completion has no observations: citing AUs and frames is not held against it
    assert_eq!(words_of(&r1("AU4 from frame 10 to 14."), Some(&v)), 1.0);
    // no text at all is nothing wrong
    let bare = r#"<think></think><answer>{"emotion": "sad", "aus": ["AU15"]}</answer>"#;
    assert_eq!(words_of(bare, Some(&v)), 1.0);
    // tool calls: the text before each call is a thought
    let calls = format!(
        "Look at the brows.\n{{\"tool\": \"zoom\", \"args\": {{\"region\": \"glabella\"}}}}\nA smile.\n{{\"tool\": \"final_answer\", \"args\": {SAD_ANSWER}}}"
    );
    assert!((words_of(&calls, Some(&v)) - 2.0 / 3.0).abs() < 1e-12);
    // an answer that does not parse scores 0 here too, and so does a run without the list
    let broken = "<think>Look at the brows.</think><answer>{\"emotion\": \"sad\"}</answer>";
    assert_eq!(words_of(broken, Some(&v)), 0.0);
    assert_eq!(words_of(&r1("Look at the brows."), None), 0.0);
}

/// A trace of two evidence steps and a final answer; `second` is the second step's thought.
fn trace(second: &str, text: &str) -> serde_json::Value {
    use crate::agent::trace::{
        Answer, AnswerAu, EmotionAnswer, Observation, Step, StopReason, Timings, ToolCall, Trace,
    };
    let step = |id: usize, thought: &str, tool: &str, args: serde_json::Value, obs: &str| Step {
        id,
        thought: thought.into(),
        tool: ToolCall {
            name: tool.into(),
            args,
        },
        observation: Observation::ok(obs.into(), serde_json::json!({}), vec![]),
        tokens: 0,
        seconds: 0.0,
        images: vec![],
    };
    let t = Trace {
        schema: crate::agent::trace::SCHEMA.into(),
        version: "0".into(),
        question: "Which emotion?".into(),
        input: crate::agent::trace::InputInfo {
            path: "clip".into(),
            kind: "frames".into(),
            fps: Some(30.0),
            frames: 29,
            frame: 0,
            face_box: None,
        },
        model: "m".into(),
        steps: vec![
            step(
                1,
                "Look at the motion.",
                "spot_expressions",
                serde_json::json!({}),
                "1 expression(s); #1 Micro onset 10 apex 14 offset 20",
            ),
            step(
                2,
                second,
                "au_evidence",
                serde_json::json!({"source": "motion"}),
                "AU15 Lip Corner Depressor 0.52",
            ),
            step(
                3,
                "The lip corners pull down.",
                "final_answer",
                serde_json::json!({"emotion": "sadness", "aus": ["AU15"], "text": text}),
                "the answer",
            ),
        ],
        answer: Some(Answer {
            emotion: EmotionAnswer {
                label: "sadness".into(),
                confidence: None,
                distribution: vec![],
            },
            aus: vec![AnswerAu {
                au: "AU15".into(),
                name: "Lip Corner Depressor".into(),
                intensity: 0.52,
                side: "both".into(),
                evidence: vec![2],
            }],
            intervals: vec![],
            text: text.into(),
            step: 3,
        }),
        verifier: vec![],
        stop: StopReason::Answered,
        timings: Timings::default(),
    };
    serde_json::to_value(&t).unwrap()
}

fn words_of_trace(doc: serde_json::Value) -> f64 {
    let sad = Gold {
        emotion: Emotion::Sadness,
        aus: set(&["AU15"]),
    };
    let item = Item {
        rollout: Rollout {
            id: "t".into(),
            group: "q".into(),
            sample: "s".into(),
            parsed: parse::parse_trace(&doc),
            line: 0,
        },
        gold: sad,
    };
    let mut state = CalibrationState::default();
    let (scores, _) = score_batch(vec![item], &unit_config(), &mut state, Some(&vocab()));
    scores[0].terms.words
}

#[test]
fn words_of_traces() {
    let clean = "The lip corners pull down (AU15) from frame 10 to 14: sadness.";
    // every thought and the text pass
    assert_eq!(
        words_of_trace(trace("The motion was strongest on frame 14.", clean)),
        1.0
    );
    // a thought naming another emotion: 3 of 4 texts pass
    assert_eq!(
        words_of_trace(trace("The clip shows a smile.", clean)),
        0.75
    );
    // a trace's texts may cite only what its observations showed: AU12 and frame 30 were not
    let unshown = "The lip corners rise (AU12) at frame 30.";
    assert_eq!(words_of_trace(trace("Look at frame 14.", unshown)), 0.75);
    // before the AU evidence ran, citing AU15 is unsupported
    assert_eq!(words_of_trace(trace("Look at AU15.", clean)), 0.75);
    // a partial document (no input, no timings) is read all the same
    let mut partial = trace("The clip shows a smile.", clean);
    partial.as_object_mut().unwrap().remove("input");
    partial.as_object_mut().unwrap().remove("timings");
    assert_eq!(words_of_trace(partial), 0.75);
}
