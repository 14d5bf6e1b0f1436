//! `actfer flow` on SynthME pairs: every classical method beats "no motion" against the
//! ground truth, the files it writes read back, and bad requests exit 2 with a message.

use std::path::Path;

use actfer::eval::flow::{epe, read_flo, read_mask, Flow};
use actfer::face::pipeline::FacePipeline;
use actfer::models::ModelStore;
use actfer::synth::generate::{generate, FlowOutput, Settings, GENERATOR_VERSION};
use actfer::synth::identity::{load_looks, testdata_dir, Split};
use actfer::synth::labels::{Kind, Labels, SCHEMA};
use actfer::synth::spec::Switches;
use assert_cmd::Command;
use candle_core::Device;

/// Two macro clips from the test identities, no nuisance (clear, large motion).
fn dataset(root: &Path) -> Labels {
    let store = ModelStore::from_env().unwrap();
    let pipeline = FacePipeline::load(&store, &Device::Cpu).unwrap();
    let looks = load_looks(&pipeline, &testdata_dir(store.home()), &[Split::Test]).unwrap();
    let settings = Settings {
        schema: SCHEMA.to_string(),
        version: GENERATOR_VERSION,
        seed: 11,
        clips: 6,
        split: Some(Split::Test),
        long: false,
        fps: 30.0,
        size: 96,
        flow: FlowOutput::Apex,
        video: false,
        switches: Switches::NONE,
        sheets: false,
    };
    generate(root, &settings, &looks, &|| {}).unwrap()
}

#[test]
fn every_method_beats_no_motion_on_an_expression() {
    let tmp = tempfile::tempdir().unwrap();
    let labels = dataset(tmp.path());
    let clip = labels
        .clips
        .iter()
        .find(|c| c.events.first().is_some_and(|e| e.kind == Kind::Macro))
        .or_else(|| labels.clips.iter().find(|c| !c.events.is_empty()))
        .expect("an expression among 6 clips");
    let e = &clip.events[0];
    let frames = tmp.path().join(&clip.files.frames);
    let gold = read_flo(&tmp.path().join(&clip.files.flow).join("onset_apex_0.flo")).unwrap();
    let (_, _, mask) = read_mask(&tmp.path().join(&clip.files.mask)).unwrap();
    let zero = epe(&Flow::zeros(96, 96), &gold, Some(&mask)).unwrap();
    let zero = zero.masked.unwrap().epe.unwrap();
    for method in ["tvl1", "dis", "dis-fast", "farneback"] {
        let out = tmp.path().join(format!("{method}.flo"));
        let png = tmp.path().join(format!("{method}.png"));
        let o = Command::cargo_bin("actfer")
            .unwrap()
            .args([
                "flow",
                frames.to_str().unwrap(),
                "--method",
                method,
                "--json",
            ])
            .args([
                "--onset",
                &e.onset.to_string(),
                "--apex",
                &e.apex.to_string(),
            ])
            .args([
                "--out",
                out.to_str().unwrap(),
                "--png",
                png.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["method"], method);
        let pred = read_flo(&out).unwrap();
        let got = epe(&pred, &gold, Some(&mask))
            .unwrap()
            .masked
            .unwrap()
            .epe
            .unwrap();
        eprintln!(
            "{method}: face EPE {got:.3} px, no motion {zero:.3} px (apex {:.2} px)",
            e.apex_displacement_px
        );
        assert!(
            got < 0.8 * zero,
            "{method}: EPE {got} vs {zero} for no motion"
        );
        assert!(png.is_file());
    }
}

#[test]
fn bad_requests_exit_2() {
    let run = |args: &[&str]| {
        Command::cargo_bin("actfer")
            .unwrap()
            .arg("flow")
            .args(args)
            .output()
            .unwrap()
    };
    let photo = ModelStore::from_env()
        .unwrap()
        .home()
        .join("testdata/single_face.jpg");
    let p = photo.to_str().unwrap();
    let other = ModelStore::from_env()
        .unwrap()
        .home()
        .join("testdata/multi_face.jpg");
    let cases: [(Vec<&str>, &str); 4] = [
        (vec![p, p, "--method", "raft"], "unknown flow method"),
        (vec![p], "--onset and --apex"),
        (vec![p, other.to_str().unwrap()], "equal sizes"),
        (vec![p, "/nonexistent.png"], "no such file"),
    ];
    for (args, text) in cases {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(text), "{args:?}: {err}");
    }
}

#[test]
fn face_flow_of_a_moved_head_is_still() {
    // The same photo moved 5 px right and 3 px down: head motion only. Aligned on the face
    // and with the rest of the head motion removed, the flow is (nearly) still, and the
    // removed fit is reported.
    use actfer::media::{read_image, write_image, RgbImage};
    let photo = crate::common::testdata("single_face.jpg");
    let a = read_image(&photo).unwrap();
    let (w, h) = (a.width as usize, a.height as usize);
    let mut b = RgbImage::new(a.width, a.height);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (x.saturating_sub(5), y.saturating_sub(3));
            let (s, d) = (3 * (sy * w + sx), 3 * (y * w + x));
            b.data[d..d + 3].copy_from_slice(&a.data[s..s + 3]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let moved = dir.path().join("moved.png");
    write_image(&moved, &b).unwrap();
    let report = crate::common::json(&[
        "flow",
        photo.to_str().unwrap(),
        moved.to_str().unwrap(),
        "--method",
        "dis",
        "--face",
    ]);
    assert_eq!(report["aligned"], true);
    assert_eq!(report["head_removed"]["model"]["motion"], "similarity");
    let mean = report["mean_magnitude_px"].as_f64().unwrap();
    assert!(mean < 0.1, "facial flow of a moved head: mean {mean} px");
}
