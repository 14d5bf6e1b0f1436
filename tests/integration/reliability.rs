//! The reliability suite: user mistakes through the command line. Each case asserts the exit
//! code (2: the user's to fix, never 1, which is kept for real bugs), that the message names
//! the path at fault, and that it says what to do. More cases live beside their areas
//! (media: corrupt, truncated and oversized inputs; agent: long questions, one run per trace
//! folder; models: damaged files).

use crate::common::{fails_with, testdata};

/// An output path under a file (so its folder cannot exist; root may write anywhere else, so
/// permissions cannot stand in for it in CI) is the user's mistake for every command that
/// writes, and so is a JPEG given where a trace was expected.
#[test]
fn unwritable_outputs_and_wrong_files_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let under = |name: &str| file.join(name).to_str().unwrap().to_string();
    let image = testdata("single_face.jpg");
    let image = image.to_str().unwrap();
    let clip = testdata("single_face.mp4");
    let clip = clip.to_str().unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "flow".into(),
            image.into(),
            image.into(),
            "--out".into(),
            under("f.png"),
        ],
        vec![
            "synth".into(),
            "--out".into(),
            under("s"),
            "--clips".into(),
            "1".into(),
            "--split".into(),
            "test".into(),
        ],
        vec![
            "explain".into(),
            clip.into(),
            "--out".into(),
            under("e.jsonl"),
        ],
        vec![
            "ask".into(),
            image.into(),
            "what?".into(),
            "--trace-dir".into(),
            under("t"),
        ],
        vec!["report".into(), image.into()],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails_with(&args, 2);
        let named = if args[0] == "report" {
            image.to_string()
        } else {
            under("")
        };
        assert!(err.contains(named.trim_end_matches('/')), "{args:?}: {err}");
        assert!(
            err.contains("check the path") || err.contains("choose"),
            "{args:?}: {err}"
        );
    }
}

/// A GGUF cut inside its header: exit 2 naming the file and the fix, and no call stack even
/// with `RUST_BACKTRACE=1` (candle attaches one to its errors).
#[test]
fn a_truncated_model_is_named_without_a_backtrace() {
    let store = actfer::models::ModelStore::from_env().unwrap();
    let real = store.resolve(actfer::llm::DEFAULT_MODEL).unwrap();
    let bytes = std::fs::read(real).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..2000]).unwrap();
    let out = crate::common::actfer()
        .env("RUST_BACKTRACE", "1")
        .args(["generate", "--prompt", "hi", "--max-tokens", "4", "--model"])
        .arg(&cut)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cut.gguf") && err.contains("download the file again"),
        "{err}"
    );
    assert!(!err.contains("candle_core::"), "{err}");
}

/// A clip whose face comes late: `ask` and `au` read the first frame with a face and say which
/// (they used to read frame 0 and answer "no face found").
#[test]
fn ask_reads_the_first_frame_with_a_face() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("late");
    std::fs::create_dir(&frames).unwrap();
    let face = actfer::media::read_image(&testdata("single_face.jpg")).unwrap();
    let grey = actfer::media::RgbImage {
        data: vec![128; face.data.len()],
        ..face.clone()
    };
    for t in 0..6 {
        let img = if t < 2 { &grey } else { &face };
        actfer::media::write_image(&frames.join(format!("{t:05}.png")), img).unwrap();
    }
    let trace = dir.path().join("t");
    let out = crate::common::actfer()
        .args([
            "ask",
            frames.to_str().unwrap(),
            "What does this face show?",
            "--trace-dir",
        ])
        .arg(&trace)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("no face in frames 0 to 1; reading frame 2"),
        "{err}"
    );
    let t = actfer::agent::trace::Trace::read(&trace.join("trace.json")).unwrap();
    assert_eq!(t.input.frame, 2);
    // `au` likewise (it read frame 0 and said "no face")
    let out = crate::common::actfer()
        .args(["au", frames.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("reading frame 2"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["frame"], 2);
    assert_eq!(report["faces"].as_array().unwrap().len(), 1);
}

/// Frames too small for optical flow, and a folder with no images given to `explain`: the
/// user's to fix (exit 2, naming the input), not an OpenCV message with exit 1.
#[test]
fn tiny_frames_and_imageless_folders_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.png");
    let img = actfer::media::RgbImage::new(8, 8);
    actfer::media::write_image(&tiny, &img).unwrap();
    let t = tiny.to_str().unwrap();
    for method in ["dis", "meflownet"] {
        let err = fails_with(&["flow", t, t, "--method", method], 2);
        assert!(
            err.contains("tiny.png") && err.contains("at least 16x16"),
            "{err}"
        );
    }
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("a.txt"), "hi").unwrap();
    let out = dir.path().join("r.jsonl");
    let err = fails_with(
        &[
            "explain",
            notes.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("notes") && err.contains("no frames"), "{err}");
}
