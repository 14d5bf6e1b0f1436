//! `actfer report` in a real browser: headless Chromium loads the page made from a real
//! `actfer ask` trace of a clip, and from hand-made traces with what real runs seldom show (a
//! failed check, a refused step, a missing artifact, no answer, a frame, a flow map, a
//! spotting curve). The page's own script writes on `<body>` how many images decoded and how
//! many script errors there were; Chromium's log shows any console message (a blocked load,
//! an exception).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use actfer::agent::trace::FILE;
use actfer::agent::Trace;
use actfer::media::{read_image, write_image, RgbImage};
use serde_json::json;

use crate::common::{fails_with, succeeds, testdata};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless Chromium on `page` with `mode` (`--dump-dom`, `--screenshot=...`), in a
/// fresh profile, offline, with the console logged to stderr.
fn chromium(page: &Path, mode: &[&str]) -> Output {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run tools/setup (it installs the Debian package chromium)"
    );
    let profile = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            // Virtual time runs the page's load handlers before the dump or the shot.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(mode)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    println!("chromium {mode:?}: {:.1} s", start.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "chromium failed on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What the page recorded on `<body>` and what the console said, after Chromium loaded it.
struct Loaded {
    dom: String,
    images: (usize, usize),
    errors: usize,
    console: Vec<String>,
}

fn load(page: &Path) -> Loaded {
    let out = chromium(page, &["--dump-dom"]);
    let dom = String::from_utf8(out.stdout).expect("UTF-8 DOM");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    // The body tag after the head (whose script mentions `<body>` in a comment).
    let body = &dom[dom.find("</head>").expect("a head")..];
    let body = &body[body.find("<body").expect("a body")..];
    let body = &body[..body.find('>').unwrap()];
    let attr = |name: &str| -> String {
        let key = format!("{name}=\"");
        let start = body
            .find(&key)
            .unwrap_or_else(|| panic!("<body> has no {name}: the page script did not run: {body}"))
            + key.len();
        body[start..start + body[start..].find('"').unwrap()].to_string()
    };
    let images = attr("data-images");
    let (decoded, total) = images.split_once('/').expect("decoded/total");
    Loaded {
        images: (decoded.parse().unwrap(), total.parse().unwrap()),
        errors: attr("data-errors").parse().unwrap(),
        dom,
        console,
    }
}

/// A real trace: `actfer ask` with the default model on single_face.mp4, made once for the
/// tests that read it.
fn clip_trace() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-clip");
        let _ = std::fs::remove_dir_all(&dir);
        let start = Instant::now();
        succeeds(&[
            "ask",
            testdata("single_face.mp4").to_str().unwrap(),
            "What happens?",
            "--trace-dir",
            dir.to_str().unwrap(),
        ]);
        println!("actfer ask: {:.1} s", start.elapsed().as_secs_f64());
        dir
    })
}

#[test]
fn a_real_clip_trace_renders_in_chromium() {
    let dir = clip_trace();
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("clip.html");
    let printed = succeeds(&[
        "report",
        dir.join(FILE).to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        page.display().to_string()
    );
    let trace = Trace::read(&dir.join(FILE)).unwrap();
    let loaded = load(&page);
    let answer = trace.answer.as_ref().expect("the default model answers");
    assert!(
        loaded
            .dom
            .contains(&format!("<p class=\"emotion\">{}", answer.emotion.label)),
        "the answer's emotion {} is on the page",
        answer.emotion.label
    );
    for s in &trace.steps {
        assert!(
            loaded.dom.contains(&format!("id=\"step-{}\"", s.id)),
            "step {} is on the page",
            s.id
        );
    }
    let artifacts: usize = trace
        .steps
        .iter()
        .map(|s| s.observation.artifacts.len())
        .sum::<usize>()
        + usize::from(dir.join(actfer::report::FRAME).is_file());
    assert!(artifacts > 0, "the run wrote images");
    assert_eq!(
        loaded.images,
        (artifacts, artifacts),
        "every image of the trace decoded"
    );
    assert_eq!(loaded.errors, 0, "script errors");
    assert!(loaded.console.is_empty(), "console: {:?}", loaded.console);
}

#[test]
fn a_real_clip_report_screenshots_at_1280_pixels() {
    let dir = clip_trace();
    let out = succeeds(&["report", dir.to_str().unwrap()]);
    let page = dir.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        page.display().to_string(),
        "the default output is report.html beside trace.json"
    );
    let shots = tempfile::tempdir().unwrap();
    let png = shots.path().join("report.png");
    chromium(
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2000",
        ],
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    assert!(bytes.len() > 20_000, "{} bytes: a blank page?", bytes.len());
}

/// A PNG written by the library: a horizontal gradient standing in for a flow colour map.
fn gradient(path: &Path) {
    let mut image = RgbImage::new(160, 90);
    for (i, px) in image.data.chunks_mut(3).enumerate() {
        let x = (i % 160) as u8;
        px.copy_from_slice(&[x, 255 - x, 128]);
    }
    write_image(path, &image).unwrap();
}

/// A clip trace in `dir` with a spotting curve, a flow map, a refused step, an artifact that
/// is not there, a failed check and the frame; `answered: false` drops the answer, its step
/// and the checks.
fn hand_made(dir: &Path, answered: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let frame = read_image(&testdata("single_face.jpg")).unwrap();
    write_image(&dir.join(actfer::report::FRAME), &frame).unwrap();
    gradient(&dir.join("step2-flow.png"));
    let values: Vec<f64> = (0..48)
        .map(|f| if (20..=30).contains(&f) { 1.5 } else { 0.1 })
        .collect();
    let mut trace = json!({
        "schema": "actfer.trace/1",
        "version": "0.1.0",
        "question": "What happens <b>here</b>?",
        "input": {"path": "clip.mp4", "kind": "video", "fps": 24.0, "frames": 48, "frame": 0,
                  "face_box": null},
        "model": "hand-made",
        "steps": [
            {"id": 1, "thought": "<script>alert(1)</script>",
             "tool": {"name": "spot_expressions", "args": {}},
             "observation": {"text": "1 expression(s)", "artifacts": [], "error": false,
                "data": {"spots": [{"onset": 20, "apex": 25, "offset": 30, "kind": "Macro",
                                    "peak": 1.4, "score": 14.0, "curve": "AU12"}],
                         "blinks": 0,
                         "curve": {"frames": (0..48).collect::<Vec<_>>(), "values": values}}},
             "tokens": 20, "seconds": 1.0},
            {"id": 2, "thought": "what moved",
             "tool": {"name": "optical_flow", "args": {"onset": 20, "apex": 25}},
             "observation": {"text": "facial flow 20 -> 25", "data": {"onset": 20, "apex": 25},
                             "artifacts": ["step2-flow.png", "step2-gone.png"], "error": false},
             "tokens": 20, "seconds": 1.0},
            {"id": 3, "thought": "the nose",
             "tool": {"name": "zoom", "args": {"region": "nose"}},
             "observation": {"text": "zoom needs args.region, one of: ...", "data": null,
                             "artifacts": [], "error": true},
             "tokens": 20, "seconds": 1.0},
            {"id": 4, "thought": "angry",
             "tool": {"name": "final_answer", "args": {"emotion": "anger", "aus": ["AU4"]}},
             "observation": {"text": "the answer", "data": null, "artifacts": [], "error": false},
             "tokens": 20, "seconds": 1.0}
        ],
        "answer": {"emotion": {"label": "anger", "confidence": 0.2, "distribution": []},
                   "aus": [{"au": "AU4", "name": "Brow Lowerer", "intensity": 0.0,
                            "side": "both", "evidence": []}],
                   "intervals": [{"onset": 20, "apex": 25, "offset": 30}],
                   "text": "", "step": 4},
        "verifier": [{"name": "aus_have_evidence", "passed": false,
                      "detail": "AU4 is cited by no step"}],
        "stop": "step_limit",
        "timings": {"perception_seconds": 1.0, "llm_seconds": 2.0, "total_seconds": 3.0}
    });
    if !answered {
        trace["answer"] = serde_json::Value::Null;
        trace["verifier"] = json!([]);
        trace["stop"] = json!("token_limit");
        trace["steps"].as_array_mut().unwrap().pop();
    }
    std::fs::write(
        dir.join(FILE),
        serde_json::to_string_pretty(&trace).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_hand_made_report_shows_what_went_wrong() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t");
    hand_made(&dir, true);
    let out = succeeds(&["report", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}", dir.join("step2-gone.png").display()))
            && stderr.contains("missing"),
        "the warning names the missing artifact: {stderr}"
    );
    let loaded = load(&dir.join("report.html"));
    assert_eq!(loaded.images, (2, 2), "the frame and the flow map decoded");
    assert_eq!(loaded.errors, 0);
    assert!(loaded.console.is_empty(), "console: {:?}", loaded.console);
    let dom = &loaded.dom;
    assert!(dom.contains("<strong>step2-gone.png</strong><br>missing from the trace folder"));
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the thought is text"
    );
    assert!(dom.contains("What happens &lt;b&gt;here&lt;/b&gt;?"));
    assert_eq!(
        dom.matches("<script>").count(),
        1,
        "the page's own script only"
    );
    assert!(
        dom.contains("<li class=\"failed\">"),
        "the failed check is marked"
    );
    assert!(dom.contains("0/1 passed"));
    assert!(dom.contains("class=\"card step error\" id=\"step-3\""));
    assert!(dom.contains("<span class=\"bad\">no step shows it</span>"));
    assert!(dom.contains("<figure class=\"curve\"><svg class=\"chart\""));
    assert_eq!(
        dom.matches("<title>onset 20, apex 25, offset 30</title>")
            .count(),
        2,
        "the interval is shaded on the curve and on the answer's timeline"
    );
    assert!(dom.contains("<h2>Frame</h2>"));
}

#[test]
fn a_report_without_an_answer_says_why() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t");
    hand_made(&dir, false);
    std::fs::remove_file(dir.join(actfer::report::FRAME)).unwrap();
    let page = root.path().join("page.html");
    succeeds(&[
        "report",
        dir.join(FILE).to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    let loaded = load(&page);
    assert_eq!(
        loaded.images,
        (1, 1),
        "the flow map; no frame.png, no frame"
    );
    assert!(loaded.console.is_empty(), "console: {:?}", loaded.console);
    assert!(loaded.dom.contains("<h2>No answer</h2>"));
    assert!(loaded
        .dom
        .contains("the token budget ran out before an answer"));
    assert!(!loaded.dom.contains("<h2>Frame</h2>"));
    for id in 1..=3 {
        assert!(loaded.dom.contains(&format!("id=\"step-{id}\"")));
    }
}

#[test]
fn report_refuses_what_is_not_a_trace() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nowhere/trace.json");
    let stderr = fails_with(&["report", missing.to_str().unwrap()], 2);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");

    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let stderr = fails_with(&["report", empty.to_str().unwrap()], 2);
    assert!(
        stderr.contains(empty.to_str().unwrap()) && stderr.contains("no trace.json"),
        "{stderr}"
    );

    let broken = root.path().join("broken.json");
    std::fs::write(&broken, "{\"schema\": \"actfer.trace/1\"").unwrap();
    let stderr = fails_with(&["report", broken.to_str().unwrap()], 2);
    assert!(
        stderr.contains(broken.to_str().unwrap()) && stderr.contains("not an actfer trace"),
        "{stderr}"
    );

    let other = root.path().join("other.json");
    hand_made(&root.path().join("t"), true);
    let text = std::fs::read_to_string(root.path().join("t").join(FILE)).unwrap();
    std::fs::write(&other, text.replace("actfer.trace/1", "actfer.trace/9")).unwrap();
    let stderr = fails_with(&["report", other.to_str().unwrap()], 2);
    assert!(stderr.contains("actfer.trace/9"), "{stderr}");
    assert!(
        !root.path().join("report.html").exists(),
        "no page on failure"
    );
}
