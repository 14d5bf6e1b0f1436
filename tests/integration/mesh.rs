//! The 478-point mesh against MediaPipe's own runtime.
//!
//! Reference values: tests/data/mesh_reference.json, written by
//! `python tools/reference/mesh_reference.py face_landmarker.task ~/.cache/actfer/testdata
//! tests/data/mesh_reference.json` (ai-edge-litert running face_landmarks_detector.tflite; the
//! exact command and versions are in the file). Each photo's crop is given there by explicit
//! parameters (centre, size, angle) and cut the same way here (OpenCV warpAffine, bilinear).

use crate::common::testdata;
use actfer::face::landmarks68::{self, head_pose};
use actfer::face::mesh::{warp_crop, CropSpec, FaceMesh, MODEL_NAME, NUM_POINTS};
use actfer::media::read_image;
use actfer::models::ModelStore;
use candle_core::Device;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("../data/mesh_reference.json")).expect("mesh_reference.json")
}

fn spec(v: &Value) -> CropSpec {
    let f = |k: &str| v[k].as_f64().unwrap() as f32;
    let c = &v["center"];
    CropSpec {
        center: [c[0].as_f64().unwrap() as f32, c[1].as_f64().unwrap() as f32],
        size: f("size"),
        angle: f("angle"),
    }
}

fn mesh_model() -> FaceMesh {
    let dir = ModelStore::from_env()
        .unwrap()
        .require(MODEL_NAME)
        .expect("run tools/setup");
    FaceMesh::load(&dir, &Device::Cpu).expect("load the mesh")
}

#[test]
fn mesh_matches_mediapipe_on_four_photos() {
    let model = mesh_model();
    let reference = reference();
    let photos = reference["photos"].as_object().unwrap();
    assert_eq!(photos.len(), 4);
    let mut report = vec![];
    for (name, want) in photos {
        let image = read_image(&testdata(name)).unwrap();
        let (crop, _) = warp_crop(&image, &spec(want)).unwrap();
        let got = model.run_crops(&[crop]).unwrap().remove(0);
        let want_pts = want["points"].as_array().unwrap();
        assert_eq!(got.points.len(), NUM_POINTS);
        assert_eq!(want_pts.len(), NUM_POINTS);
        let (mut sum, mut worst, mut zsum) = (0f32, 0f32, 0f32);
        for (g, w) in got.points.iter().zip(want_pts) {
            let w: Vec<f32> = w
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let d = (g[0] - w[0]).hypot(g[1] - w[1]);
            sum += d;
            worst = worst.max(d);
            zsum += (g[2] - w[2]).abs();
        }
        let mean = sum / NUM_POINTS as f32;
        let zmean = zsum / NUM_POINTS as f32;
        report.push(format!(
            "{name}: mean {mean:.3} px, max {worst:.3} px, mean |dz| {zmean:.3}, presence {:.4}",
            got.presence
        ));
        assert!(
            mean <= 1.5,
            "{name}: mean 2-D error {mean} px (max {worst})"
        );
        assert!(got.presence > 0.9, "{name}: presence {}", got.presence);
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn a_mountain_is_not_a_face() {
    let model = mesh_model();
    let reference = reference();
    let v = &reference["non_face"];
    let image = read_image(&testdata(v["image"].as_str().unwrap())).unwrap();
    let (crop, _) = warp_crop(&image, &spec(v)).unwrap();
    let got = model.run_crops(&[crop]).unwrap().remove(0);
    assert!(
        got.presence < 0.1,
        "presence {} on a landscape",
        got.presence
    );
}

#[test]
fn batched_crops_give_the_same_points() {
    let model = mesh_model();
    let reference = reference();
    let photos = reference["photos"].as_object().unwrap();
    let crops: Vec<_> = photos
        .iter()
        .map(|(name, v)| {
            warp_crop(&read_image(&testdata(name)).unwrap(), &spec(v))
                .unwrap()
                .0
        })
        .collect();
    let batch = model.run_crops(&crops).unwrap();
    for (crop, b) in crops.iter().zip(&batch) {
        let one = model
            .run_crops(std::slice::from_ref(crop))
            .unwrap()
            .remove(0);
        let d = one
            .points
            .iter()
            .zip(&b.points)
            .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
            .fold(0f32, f32::max);
        assert!(d < 1e-2, "batched and single runs differ by {d} px");
    }
}

#[test]
fn sixty_eight_points_sit_where_faces_have_them() {
    let model = mesh_model();
    let reference = reference();
    let name = "0-f15-hao-ph.jpg";
    let image = read_image(&testdata(name)).unwrap();
    let mesh = model
        .landmarks_in(&image, &spec(&reference["photos"][name]))
        .unwrap();
    let p = landmarks68::from_mesh(&mesh.points);
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        r.fold([0f32; 2], |a, i| [a[0] + p[i][0] / n, a[1] + p[i][1] / n])
    };
    let (eye_l, eye_r, nose_tip, mouth) = (mean(36..42), mean(42..48), p[30], mean(48..68));
    let (brow_l, brow_r) = (mean(17..22), mean(22..27));
    // Image left / right: points 36-41 are the eye on the image's left.
    assert!(
        eye_l[0] < nose_tip[0] && nose_tip[0] < eye_r[0],
        "eyes {eye_l:?} {eye_r:?}, nose {nose_tip:?}"
    );
    assert!(
        mouth[1] > nose_tip[1] && nose_tip[1] > eye_l[1].max(eye_r[1]),
        "mouth below nose below eyes"
    );
    assert!(
        brow_l[1] < eye_l[1] && brow_r[1] < eye_r[1],
        "brows above eyes"
    );
    // The jaw runs from the image's left (0) round the chin (8) to the right (16).
    assert!(p[0][0] < p[8][0] && p[8][0] < p[16][0] && p[8][1] > mouth[1]);
    // Mouth corners 48 (left) and 54 (right) bracket the lip centres 51 (top) and 57 (bottom).
    assert!(p[48][0] < p[51][0] && p[51][0] < p[54][0] && p[51][1] < p[57][1]);

    let pose = head_pose(&mesh.points);
    assert!(
        pose.yaw.abs() < 20.0 && pose.pitch.abs() < 25.0 && pose.roll.abs() < 10.0,
        "{pose:?} for a frontal photo"
    );
}

#[test]
fn head_pose_sees_the_three_quarter_view() {
    let model = mesh_model();
    let reference = reference();
    let pose = |name: &str| {
        let image = read_image(&testdata(name)).unwrap();
        head_pose(
            &model
                .landmarks_in(&image, &spec(&reference["photos"][name]))
                .unwrap()
                .points,
        )
    };
    let frontal = pose("0-f15-hao-ph.jpg");
    let turned = pose("45-m7-di-ph.jpg");
    assert!(
        turned.yaw.abs() > frontal.yaw.abs() + 10.0,
        "frontal {frontal:?}, 3/4 view {turned:?}"
    );
}
