//! The page from hand-made traces: escaping, the answer and its absence, missing artifacts,
//! the spotting curve, and that nothing points outside the page.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::agent::trace::{
    Answer, AnswerAu, Check, EmotionAnswer, InputInfo, Interval, Observation, Step, StopReason,
    Timings, ToolCall, SCHEMA,
};

fn step(id: usize, tool: &str, args: serde_json::Value, observation: Observation) -> Step {
    Step {
        id,
        thought: format!("thought {id}"),
        tool: ToolCall {
            name: tool.into(),
            args,
        },
        observation,
        tokens: 30,
        seconds: 1.5,
        images: vec![],
    }
}

/// A two-step image trace: au_evidence showing AU12, then the answer citing it.
fn trace() -> Trace {
    Trace {
        schema: SCHEMA.into(),
        version: "0.1.0".into(),
        question: "What does this face express?".into(),
        input: InputInfo {
            path: "face.jpg".into(),
            kind: "image".into(),
            fps: None,
            frames: 1,
            frame: 0,
            face_box: Some([10.0, 20.0, 110.0, 140.0]),
        },
        model: "test-model".into(),
        steps: vec![
            step(
                1,
                "au_evidence",
                json!({"source": "appearance"}),
                Observation {
                    text: "present: AU12 Lip Corner Puller 0.80".into(),
                    data: json!({"source": "appearance", "aus": [{"au": "AU12", "code": "AU12",
                        "name": "Lip Corner Puller", "intensity": 0.8, "side": "both",
                        "source": "blendshape:mouthSmileLeft"}]}),
                    ..Default::default()
                },
            ),
            step(
                2,
                "final_answer",
                json!({"emotion": "happiness", "aus": ["AU12"], "text": "a smile"}),
                Observation {
                    text: "the answer".into(),
                    ..Default::default()
                },
            ),
        ],
        answer: Some(Answer {
            emotion: EmotionAnswer {
                label: "happiness".into(),
                confidence: Some(0.91),
                distribution: vec![("happiness".into(), 0.91), ("neutral".into(), 0.09)],
            },
            aus: vec![AnswerAu {
                au: "AU12".into(),
                name: "Lip Corner Puller".into(),
                intensity: 0.8,
                side: "both".into(),
                evidence: vec![1],
            }],
            intervals: vec![],
            text: "a smile".into(),
            step: 2,
        }),
        verifier: vec![Check {
            name: "aus_have_evidence".into(),
            passed: true,
            detail: "each of the 1 AU(s) is present".into(),
        }],
        stop: StopReason::Answered,
        timings: Timings {
            perception_seconds: 0.5,
            flow_seconds: 0.25,
            llm_seconds: 2.5,
            total_seconds: 3.0,
        },
    }
}

/// A real (1x1, grey) PNG file.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x68, 0x00, 0x00, 0x00,
    0x82, 0x00, 0x81, 0x77, 0xcd, 0x72, 0xb6, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn page(trace: &Trace, dir: &Path) -> String {
    render(trace, dir).unwrap()
}

#[test]
fn model_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trace();
    t.steps[0].thought = "<script>alert(1)</script>".into();
    t.question = "<img src=x onerror=alert(2)>?".into();
    t.answer.as_mut().unwrap().text = "a \"smile\" & <b>more</b>".into();
    let html = page(&t, dir.path());
    assert!(!html.contains("<script>alert(1)"), "the thought is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(!html.contains("<img src=x"), "the question is escaped");
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;?"));
    assert!(html.contains("a &quot;smile&quot; &amp; &lt;b&gt;more&lt;&#x2f;b&gt;"));
    // The page's own script is its only one.
    assert_eq!(html.matches("<script>").count(), 1);
}

#[test]
fn the_answer_shows_with_its_evidence_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(&trace(), dir.path());
    assert!(html.contains("<p class=\"emotion\">happiness"));
    assert!(html.contains("probability 0.91"));
    assert!(
        html.contains("<a href=\"#step-1\">1</a>"),
        "AU12 cites step 1"
    );
    assert!(html.contains("id=\"step-1\"") && html.contains("id=\"step-2\""));
    assert!(html.contains("style=\"width: 80.0%\""), "AU12 at 0.80");
    assert!(html.contains("style=\"width: 91.0%\""), "happiness at 0.91");
    assert!(html.contains("1/1 passed"));
    assert!(html.contains(StopReason::Answered.describe()));
    assert!(!html.contains("<h2>Frame</h2>"), "no frame.png, no frame");
}

#[test]
fn a_trace_without_an_answer_still_renders_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trace();
    t.answer = None;
    t.verifier.clear();
    t.stop = StopReason::TokenLimit;
    t.steps.truncate(1);
    t.steps[0].observation = Observation {
        text: "zoom needs args.region".into(),
        error: true,
        ..Default::default()
    };
    let html = page(&t, dir.path());
    assert!(html.contains("<h2>No answer</h2>"));
    assert!(html.contains(StopReason::TokenLimit.describe()));
    assert!(html.contains("id=\"step-1\""));
    assert!(html.contains("class=\"card step error\""));
    assert!(html.contains("<span class=\"badge bad\">refused</span>"));
    assert!(html.contains("The verifier ran no checks"));
}

#[test]
fn failed_checks_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trace();
    t.verifier.push(Check {
        name: "emotion_fits_aus".into(),
        passed: false,
        detail: "anger needs AU4".into(),
    });
    let html = page(&t, dir.path());
    assert!(html.contains("1/2 passed"));
    assert!(html.contains("<li class=\"failed\">"));
    assert!(html.contains("anger needs AU4"));
}

#[test]
fn a_missing_artifact_is_named_in_the_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("step1-zoom.png"), PNG).unwrap();
    let mut t = trace();
    t.steps[0].observation.artifacts = vec!["step1-zoom.png".into(), "step1-flow.png".into()];
    let html = page(&t, dir.path());
    assert!(html.contains("<strong>step1-flow.png</strong><br>missing from the trace folder"));
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 1);
    let problems = artifact_problems(&t, dir.path());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].step, 1);
    assert_eq!(problems[0].path, dir.path().join("step1-flow.png"));
    assert_eq!(problems[0].problem, images::Problem::Missing);
}

#[test]
fn the_frame_shows_when_the_run_wrote_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FRAME), PNG).unwrap();
    let html = page(&trace(), dir.path());
    assert!(html.contains("<h2>Frame</h2>"));
    let uri = format!("data:image/png;base64,{}", to_base64(PNG));
    assert!(html.contains(&format!("<img src=\"{uri}\" alt=\"frame.png\">")));
}

#[test]
fn a_spotting_step_draws_its_curve_with_the_spots_shaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = trace();
    t.input.kind = "video".into();
    t.input.frames = 40;
    t.input.fps = Some(20.0);
    t.steps[0] = step(
        1,
        "spot_expressions",
        json!({}),
        Observation {
            text: "1 expression(s)".into(),
            data: json!({
                "spots": [{"onset": 10, "apex": 15, "offset": 22, "kind": "Micro",
                           "peak": 0.4, "score": 9.0, "curve": "AU12"}],
                "blinks": 0,
                "curve": {"frames": (0..40).collect::<Vec<_>>(),
                          "values": (0..40).map(|f| if (10..=22).contains(&f) { 0.4 } else { 0.02 }).collect::<Vec<_>>()},
            }),
            ..Default::default()
        },
    );
    t.answer.as_mut().unwrap().intervals = vec![Interval {
        onset: 10,
        apex: 15,
        offset: 22,
    }];
    let html = page(&t, dir.path());
    assert!(html.contains("<figure class=\"curve\"><svg class=\"chart\""));
    assert_eq!(
        html.matches("<title>onset 10, apex 15, offset 22</title>")
            .count(),
        2,
        "shaded on the step's curve and on the answer's timeline"
    );
    assert!(html.contains("<span class=\"tag\">micro</span>"));
    assert!(html.contains("(0.50 s, 0.75 s, 1.10 s)"));
    // No curve data, no chart (spots alone still listed).
    t.steps[0].observation.data["curve"] = serde_json::Value::Null;
    let html = page(&t, dir.path());
    assert!(!html.contains("<figure class=\"curve\">"));
    assert!(html.contains("<span class=\"tag\">micro</span>"));
}

#[test]
fn nothing_is_loaded_from_outside_the_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FRAME), PNG).unwrap();
    let mut t = trace();
    t.steps[0].observation.artifacts = vec![FRAME.into()];
    let html = page(&t, dir.path());
    let sources: Vec<&str> = html.split(" src=\"").skip(1).collect();
    assert_eq!(sources.len(), 2);
    for s in sources {
        assert!(s.starts_with("data:image/png;base64,"), "{}", &s[..40]);
    }
    assert!(!html.contains("http:") && !html.contains("https:"));
    let links: Vec<&str> = html.split(" href=\"").skip(1).collect();
    assert!(!links.is_empty());
    assert!(
        links.iter().all(|h| h.starts_with("#step-")),
        "links stay in the page"
    );
    assert!(!html.contains("<link"));
    assert!(html.contains("default-src 'none'; img-src data:;"));
}

#[test]
fn the_policy_allows_the_page_script_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let html = page(&trace(), dir.path());
    let script = &html[html.find("<script>").unwrap() + 8..html.find("</script>").unwrap()];
    assert_eq!(script, SCRIPT);
    let hash = to_base64(&Sha256::digest(script.as_bytes()));
    assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
}

/// The encoder of the data URIs and the script hash: RFC 4648's vectors, padding included.
#[test]
fn base64_is_rfc_4648_with_padding() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(to_base64(plain.as_bytes()), coded);
    }
    assert_eq!(to_base64(&[0xfb, 0xff]), "+/8=");
}
