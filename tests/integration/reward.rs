//! `actfer reward` through the CLI: hand-computed scores, EMA calibration across runs with a
//! saved state, the serve protocol, and bad input with line numbers.

use std::path::{Path, PathBuf};

use crate::common::{actfer, fails_with};
use serde_json::Value;

/// Weights 1, alpha 0.5, beta 0.5: the values of src/reward/tests.rs.
const UNIT: &str = "[weights]\nformat = 1.0\nregion = 1.0\nau = 1.0\nconsistency = 1.0\nemotion = 1.0\nutility = 1.0\nwords = 1.0\n[calibration]\nalpha = 0.5\nbeta = 0.5\n";

const LABELS: &str = r#"{"sample": "s1", "emotion": "happiness", "aus": ["AU6", "AU12"]}
{"sample": "s2", "emotion": "Sad", "aus": ["AU1", "AU4", "AU15"]}
"#;

fn rollout(id: &str, group: &str, sample: &str, answer: &str, zoomed: bool) -> String {
    let completion = format!("<think>look</think>\n<answer>{answer}</answer>");
    serde_json::json!({"id": id, "group": group, "sample": sample, "completion": completion, "zoomed": zoomed}).to_string()
}

const PERFECT: &str = r#"{"emotion": "happy", "aus": ["AU6", "AU12"]}"#;
const SAD: &str = r#"{"emotion": "sadness", "aus": ["AU1", "AU4", "AU15"]}"#;
const BROKEN: &str = r#"{"emotion": "happy", "aus": ["AU6", "AU6"]}"#;

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        let d = Dir {
            dir: tempfile::tempdir().unwrap(),
        };
        d.write("unit.toml", UNIT);
        d.write("labels.jsonl", LABELS);
        d
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn s(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("{a} is not a number"));
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

/// Scores `rollouts` with the unit config and the state file; returns (summary, scores, groups).
fn score(d: &Dir, name: &str, rollouts: &[String]) -> (Value, Vec<Value>, Vec<Value>) {
    d.write(name, &(rollouts.join("\n") + "\n"));
    let out = actfer()
        .args([
            "reward",
            "--rollouts",
            &d.s(name),
            "--labels",
            &d.s("labels.jsonl"),
            "--config",
            &d.s("unit.toml"),
        ])
        .args([
            "--state",
            &d.s("state.json"),
            "--out",
            &d.s("scores.jsonl"),
            "--groups",
            &d.s("groups.jsonl"),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        summary,
        lines(&d.path("scores.jsonl")),
        lines(&d.path("groups.jsonl")),
    )
}

/// Three batches through the CLI, the state saved between them (see src/reward/tests.rs for
/// the arithmetic; every thought, "look", passes the words checks):
/// 1. q1 on s1: perfect+zoomed (task 6), sad-answer (53/15), malformed (0): U = 127/30,
///    Uhat = 127/60, totals 487/60, 53/15, 0, A_1 = (127/30) / (3.3228446... + 1e-6);
///    Ubar_happiness <- 127/60.
/// 2. q2 on s1, both zoomed: U undefined, Uhat = Ubar = 127/60; no update.
/// 3. q3 on s1: zoomed perfect and unzoomed perfect: U = 0, Uhat = 127/120,
///    Ubar_happiness <- 127/120. Also q4 on s2 (sadness), never zoomed: no update, Ubar 0.
#[test]
fn three_batches_by_hand_with_a_saved_state() {
    let d = Dir::new();
    let (summary, scores, groups) = score(
        &d,
        "b1.jsonl",
        &[
            rollout("a", "q1", "s1", PERFECT, true),
            rollout("b", "q1", "s1", SAD, false),
            rollout("c", "q1", "s1", BROKEN, false),
        ],
    );
    let t = &scores[1]["terms"];
    for (k, v) in [
        ("format", 1.0),
        ("au", 0.0),
        ("consistency", 1.0),
        ("emotion", 0.0),
        ("utility", 0.0),
        ("words", 1.0),
    ] {
        close(&t[k], v);
    }
    close(&t["region"], 8.0 / 15.0);
    close(&scores[0]["terms"]["utility"], 127.0 / 60.0);
    close(&scores[0]["total"], 487.0 / 60.0);
    close(&scores[1]["total"], 53.0 / 15.0);
    close(&scores[2]["total"], 0.0);
    assert!(scores[2]["format_error"]
        .as_str()
        .unwrap()
        .contains("twice"));
    close(
        &scores[0]["advantage"],
        127.0 / 30.0 / ((59623.0f64 / 5400.0).sqrt() + 1e-6),
    );
    close(&groups[0]["utility"], 127.0 / 30.0);
    close(&groups[0]["uhat"], 127.0 / 60.0);
    assert_eq!(summary["summary"]["format_failures"], 1);
    close(
        &summary["summary"]["state"]["classes"]["happiness"]["ubar"],
        127.0 / 60.0,
    );

    let (_, scores, groups) = score(
        &d,
        "b2.jsonl",
        &[
            rollout("a", "q2", "s1", PERFECT, true),
            rollout("b", "q2", "s1", PERFECT, true),
        ],
    );
    assert!(groups[0]["utility"].is_null());
    close(&groups[0]["uhat"], 127.0 / 60.0);
    close(&scores[0]["total"], 487.0 / 60.0);
    close(&scores[0]["advantage"], 0.0);

    let (summary, scores, groups) = score(
        &d,
        "b3.jsonl",
        &[
            rollout("a", "q3", "s1", PERFECT, true),
            rollout("b", "q3", "s1", PERFECT, false),
            rollout("c", "q4", "s2", SAD, false),
            rollout("d", "q4", "s2", PERFECT, false),
        ],
    );
    close(&groups[0]["utility"], 0.0);
    close(&groups[0]["uhat"], 127.0 / 120.0);
    close(&scores[0]["total"], 6.0 + 127.0 / 120.0);
    close(&scores[2]["total"], 6.0);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("state.json")).unwrap()).unwrap();
    close(&state["classes"]["happiness"]["ubar"], 127.0 / 120.0);
    assert_eq!(state["batches"], 3);
    assert!(state["classes"].get("sadness").is_none());
    assert_eq!(summary["summary"]["per_emotion"]["sadness"]["rollouts"], 2);
}

#[test]
fn traces_and_tool_calls_are_read() {
    let d = Dir::new();
    let trace = serde_json::json!({"id": "t", "group": "q", "sample": "s1", "trace": {
        "schema": "actfer.trace/1",
        "steps": [{"id": 1, "thought": "the mouth", "tool": {"name": "zoom", "args": {"region": "l_mouth_corner"}}, "observation": {}}],
        "answer": {"emotion": {"label": "happiness", "confidence": 0.9}, "aus": [{"au": "AU6"}, {"au": "AU12", "side": "both"}]}}});
    let calls = serde_json::json!({"id": "c", "group": "q", "sample": "s1",
        "completion": "Check the cheeks.\n{\"tool\": \"final_answer\", \"args\": {\"emotion\": \"happiness\", \"aus\": [\"AU6\", \"AU12\"]}}"});
    let (_, scores, groups) = score(&d, "r.jsonl", &[trace.to_string(), calls.to_string()]);
    assert_eq!(
        (scores[0]["zoomed"].as_bool(), scores[1]["zoomed"].as_bool()),
        (Some(true), Some(false))
    );
    // the trace's thought and the tool calls' one pass the words checks: words 1
    close(&scores[0]["task"], 6.0);
    close(&scores[1]["task"], 6.0);
    close(&groups[0]["utility"], 0.0);
}

/// One file with each kind of problem; default: skip and count; --strict: exit 2 at the first.
#[test]
fn bad_input_is_reported_with_line_numbers() {
    let d = Dir::new();
    d.write(
        "labels.jsonl",
        &(LABELS.to_string() + "{\"sample\": \"s3\", \"emotion\": \"bored\", \"aus\": []}\n"),
    );
    let rollouts = [
        rollout("a", "q1", "s1", PERFECT, true),
        "{\"id\": \"b\", \"group\": \"q1\"".to_string(), // 2: malformed JSON
        rollout("c", "q2", "s9", PERFECT, false),        // 3: no label
        rollout("d", "q3", "s3", PERFECT, false),        // 4: label skipped (unknown emotion)
        rollout("e", "", "s1", PERFECT, false),          // 5: empty group id
    ];
    d.write("r.jsonl", &rollouts.join("\n"));
    let args = [
        "reward",
        "--rollouts",
        &d.s("r.jsonl"),
        "--labels",
        &d.s("labels.jsonl"),
    ];
    let out = actfer().args(args).arg("--json").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "7 problem(s)",
        "line 2:",
        "line 3:",
        "no label for sample \"s9\"",
        "unknown emotion \"bored\"",
        "empty group",
        "line 3 was skipped",
    ] {
        assert!(stderr.contains(want), "{want:?} not in {stderr}");
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["rollouts"], 1);
    assert_eq!(v["summary"]["skipped_rollouts"], 4);
    assert_eq!(v["summary"]["skipped_labels"], 1);
    let where_: Vec<(String, u64)> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                Path::new(p["source"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
                p["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("labels.jsonl", 3),
        ("r.jsonl", 2),
        ("r.jsonl", 3),
        ("r.jsonl", 4),
        ("r.jsonl", 5),
        ("r.jsonl", 3),
        ("r.jsonl", 4),
    ];
    assert_eq!(
        where_,
        want.map(|(s, l)| (s.to_string(), l)).to_vec(),
        "q2 and q3 end up empty"
    );

    let stderr = fails_with(&[&args[..], &["--strict"]].concat(), 2);
    assert!(
        stderr.contains("labels.jsonl: line 3: label \"s3\": unknown emotion"),
        "{stderr}"
    );
    d.write("labels.jsonl", LABELS);
    let stderr = fails_with(&[&args[..], &["--strict"]].concat(), 2);
    assert!(
        stderr.contains("r.jsonl: line 2: not a rollout"),
        "{stderr}"
    );

    // Nothing scorable at all is an error even without --strict.
    d.write("none.jsonl", "{oops\n");
    let stderr = fails_with(
        &[
            "reward",
            "--rollouts",
            &d.s("none.jsonl"),
            "--labels",
            &d.s("labels.jsonl"),
        ],
        2,
    );
    assert!(stderr.contains("no rollout could be scored"), "{stderr}");
    // A typo in the config is refused.
    d.write("typo.toml", "[weights]\nemotions = 2.0\n");
    fails_with(
        &[
            "reward",
            "--rollouts",
            &d.s("r.jsonl"),
            "--labels",
            &d.s("labels.jsonl"),
            "--config",
            &d.s("typo.toml"),
        ],
        2,
    );
}

#[test]
fn the_summary_table_and_stdout_lines() {
    let d = Dir::new();
    d.write(
        "r.jsonl",
        &[
            rollout("a", "q1", "s1", PERFECT, true),
            rollout("b", "q1", "s1", SAD, false),
        ]
        .join("\n"),
    );
    let out = actfer()
        .args([
            "reward",
            "--rollouts",
            &d.s("r.jsonl"),
            "--labels",
            &d.s("labels.jsonl"),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("scored 2 rollouts in 1 groups")
            && table.contains("happiness")
            && table.contains("consistency"),
        "{table}"
    );
    let out = actfer()
        .args([
            "reward",
            "--rollouts",
            &d.s("r.jsonl"),
            "--labels",
            &d.s("labels.jsonl"),
            "--out",
            "-",
        ])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("scored 2 rollouts"));
}

#[test]
fn serve_answers_one_line_per_request() {
    let d = Dir::new();
    let req = serde_json::json!({
        "rollouts": [{"id": "a", "group": "q", "sample": "s1", "completion": format!("<think>.</think><answer>{PERFECT}</answer>"), "zoomed": true},
                     {"id": "b", "group": "q", "sample": "s1", "completion": "nothing", "zoomed": false}],
        "labels": [{"sample": "s1", "emotion": "happiness", "aus": ["AU6", "AU12"]}]});
    let input = format!("{req}\nnot json\n{req}\n");
    let out = actfer()
        .args([
            "reward",
            "--serve",
            "--config",
            &d.s("unit.toml"),
            "--state",
            &d.s("state.json"),
        ])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3);
    // U = 6 - 0 = 6; Uhat = 3 (fresh), then 0.5*6 + 0.5*3 = 4.5 after one update.
    close(&answers[0]["scores"][0]["total"], 9.0);
    assert!(answers[1]["error"]
        .as_str()
        .unwrap()
        .contains("bad request"));
    close(&answers[2]["scores"][0]["total"], 10.5);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("state.json")).unwrap()).unwrap();
    assert_eq!(state["batches"], 2);
}
