//! The 52 blendshape scores against MediaPipe's own runtime.
//!
//! Reference values: tests/data/blendshape_reference.json, written by
//! `python tools/reference/blendshape_reference.py face_landmarker.task ~/.cache/actfer/testdata
//! tests/data/mesh_reference.json tests/data/blendshape_reference.json` (ai-edge-litert running
//! face_landmarks_detector.tflite, then face_blendshapes.tflite on its 146 subset points; the
//! exact command and versions are in the file). Per photo it holds the mesh crop (centre, size,
//! angle), the network's 146 input points in image pixels and its 52 scores.

use crate::common::testdata;
use actfer::error::Error;
use actfer::face::blendshapes::{
    BlendshapeScores, Blendshapes, NUM_BLENDSHAPES, NUM_INPUT_POINTS, WEIGHTS_FILE,
};
use actfer::face::mesh::{CropSpec, FaceMesh, MODEL_NAME};
use actfer::media::read_image;
use actfer::models::ModelStore;
use candle_core::Device;
use serde_json::Value;

const PHOTOS: [&str; 5] = [
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "single_face.jpg",
];

fn reference() -> Value {
    serde_json::from_str(include_str!("../data/blendshape_reference.json"))
        .expect("blendshape_reference.json")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn input_points(v: &Value) -> Vec<[f32; 2]> {
    v["input_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = floats(p);
            [p[0], p[1]]
        })
        .collect()
}

fn spec(v: &Value) -> CropSpec {
    let c = floats(&v["center"]);
    CropSpec {
        center: [c[0], c[1]],
        size: v["size"].as_f64().unwrap() as f32,
        angle: v["angle"].as_f64().unwrap() as f32,
    }
}

fn model_dir() -> std::path::PathBuf {
    ModelStore::from_env()
        .unwrap()
        .require(MODEL_NAME)
        .expect("run tools/setup")
}

fn blendshapes() -> Blendshapes {
    Blendshapes::load(&model_dir(), &Device::Cpu).expect("load the blendshape network")
}

/// The largest absolute difference between our scores and the reference, and its name.
fn worst(got: &BlendshapeScores, want: &[f32]) -> (f32, String) {
    assert_eq!(got.values.len(), NUM_BLENDSHAPES);
    assert_eq!(want.len(), NUM_BLENDSHAPES);
    got.iter()
        .zip(want)
        .map(|((name, g), w)| ((g - w).abs(), name.to_string()))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a })
}

/// Our mesh (on the reference crop) followed by our blendshapes, for each photo.
fn end_to_end() -> Vec<(String, BlendshapeScores)> {
    let mesh = FaceMesh::load(&model_dir(), &Device::Cpu).expect("load the mesh");
    let model = blendshapes();
    let reference = reference();
    PHOTOS
        .iter()
        .map(|&name| {
            let image = read_image(&testdata(name)).unwrap();
            let m = mesh
                .landmarks_in(&image, &spec(&reference["photos"][name]))
                .unwrap();
            (name.to_string(), model.scores(&m).unwrap())
        })
        .collect()
}

#[test]
fn names_and_landmarks_are_mediapipes() {
    let model = blendshapes();
    let reference = reference();
    let names: Vec<&str> = reference["blendshape_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(model.names(), names);
    let indices: Vec<usize> = reference["landmark_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(model.landmark_indices(), indices);
    assert_eq!(indices.len(), NUM_INPUT_POINTS);
}

#[test]
fn network_matches_mediapipe_on_the_reference_points() {
    let model = blendshapes();
    let reference = reference();
    let photos = &reference["photos"];
    assert_eq!(photos.as_object().unwrap().len(), PHOTOS.len());
    let inputs: Vec<_> = PHOTOS.iter().map(|n| input_points(&photos[n])).collect();
    let batch = model.run_points(&inputs).unwrap();
    let mut report = vec![];
    for ((name, got), input) in PHOTOS.iter().zip(&batch).zip(&inputs) {
        let (err, at) = worst(got, &floats(&photos[name]["scores"]));
        report.push(format!("{name}: max |diff| {err:.2e} ({at})"));
        assert!(err < 1e-3, "{name}: {at} differs by {err}");
        // One at a time gives the batch's scores.
        let one = model.run_points(std::slice::from_ref(input)).unwrap();
        let (err, at) = worst(&one[0], &got.values);
        assert!(
            err < 1e-5,
            "{name}: single and batched runs differ by {err} ({at})"
        );
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn mesh_then_blendshapes_match_mediapipe_end_to_end() {
    let reference = reference();
    let mut report = vec![];
    let mut failures = vec![];
    for (name, got) in end_to_end() {
        let (err, at) = worst(&got, &floats(&reference["photos"][&name]["scores"]));
        report.push(format!("{name}: max |diff| {err:.2e} ({at})"));
        if err >= 0.02 {
            failures.push(format!("{name}: {at} differs by {err}"));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn scores_follow_the_posed_expressions() {
    let all = end_to_end();
    let of = |name: &str| &all.iter().find(|(n, _)| n == name).unwrap().1;
    let (happy, surprise) = (of("0-f15-hao-ph.jpg"), of("0-f1-su-ph.jpg"));
    let s = |scores: &BlendshapeScores, name: &str| scores.get(name).unwrap();

    // Happy: both smile scores lead.
    let top3: Vec<&str> = happy.top(3).into_iter().map(|(n, _)| n).collect();
    assert!(
        top3.contains(&"mouthSmileLeft") && top3.contains(&"mouthSmileRight"),
        "happy photo's top 3: {:?}",
        happy.top(3)
    );
    assert!(s(happy, "mouthSmileLeft") > 0.5 && s(happy, "mouthSmileRight") > 0.5);

    // Surprise: an open jaw and raised inner brows, neither of which the smile shows.
    let top5: Vec<&str> = surprise.top(5).into_iter().map(|(n, _)| n).collect();
    assert!(
        top5.contains(&"jawOpen") && top5.contains(&"browInnerUp"),
        "surprise photo's top 5: {:?}",
        surprise.top(5)
    );
    assert!(s(surprise, "jawOpen") > 0.4, "{:?}", surprise.top(5));
    assert!(s(surprise, "browInnerUp") > 0.25, "{:?}", surprise.top(5));
    assert!(s(surprise, "jawOpen") > s(happy, "jawOpen") + 0.2);
    assert!(s(surprise, "browInnerUp") > s(happy, "browInnerUp") + 0.2);
    assert!(s(happy, "mouthSmileLeft") > s(surprise, "mouthSmileLeft") + 0.5);

    for (name, scores) in &all {
        assert!(
            scores.values.iter().all(|v| (0.0..=1.0).contains(v)),
            "{name}: a score outside [0, 1]"
        );
    }
}

#[test]
fn scores_ignore_where_the_face_is_and_its_size() {
    let model = blendshapes();
    let reference = reference();
    let points = input_points(&reference["photos"]["0-f1-su-ph.jpg"]);
    let moved: Vec<[f32; 2]> = points
        .iter()
        .map(|p| [0.5 * p[0] + 100.0, 0.5 * p[1] - 40.0])
        .collect();
    let out = model.run_points(&[points, moved]).unwrap();
    let (err, at) = worst(&out[0], &out[1].values);
    assert!(err < 1e-4, "{at} changes by {err}");
}

#[test]
fn load_errors_say_what_is_wrong() {
    let missing = std::path::Path::new("/no/such/face_blendshapes.safetensors");
    assert!(matches!(
        Blendshapes::load(missing, &Device::Cpu),
        Err(Error::NotFound { .. })
    ));

    let empty_dir = tempfile::tempdir().unwrap();
    let err = Blendshapes::load(empty_dir.path(), &Device::Cpu)
        .err()
        .expect("a folder without the file");
    assert!(matches!(err, Error::BadModel { .. }), "{err}");
    assert!(err.to_string().contains(WEIGHTS_FILE), "{err}");

    // The mesh network is a converted TFLite graph, but not this one.
    let mesh_file = model_dir().join("face_landmarks_detector.safetensors");
    let err = Blendshapes::load(&mesh_file, &Device::Cpu)
        .err()
        .expect("the mesh network is not the blendshape network");
    assert!(matches!(err, Error::BadModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("face_landmarks_detector.safetensors") && msg.contains("run tools/setup"),
        "{msg}"
    );
}
