//! Media input: videos, frame folders, images, and the errors for bad ones.

use std::path::Path;

use crate::common::{fails_with, json, testdata};
use actfer::media::{write_image, Media, MediaKind, OpenOptions, RgbImage};

#[test]
fn probe_reports_the_demo_clip() {
    let clip = testdata("WolfgangLanger_Pexels.mp4");
    let info = json(&["media", "probe", clip.to_str().unwrap()]);
    assert_eq!(info["kind"], "video");
    assert_eq!(info["frames"], 472);
    assert_eq!(info["width"], 640);
    assert_eq!(info["height"], 360);
    let fps = info["fps"].as_f64().unwrap();
    assert!((fps - 23.976).abs() < 0.01, "fps {fps}");
    assert_eq!(info["fps_source"], "container");
}

#[test]
fn a_valid_clip_that_decodes_fewer_frames_than_announced_is_accepted() {
    // no_face.mp4 announces 98 frames; OpenCV and ffprobe both decode 95 (an edit list).
    let clip = testdata("no_face.mp4");
    let info = json(&["media", "probe", clip.to_str().unwrap()]);
    assert_eq!(info["frames"], 95);
    assert_eq!(info["width"], 960);
}

#[test]
fn hevc_mov_is_decoded() {
    let clip = testdata("face_noface.mov");
    let info = json(&["media", "probe", clip.to_str().unwrap()]);
    assert_eq!(info["frames"], 169);
    assert_eq!(info["codec"], "hvc1");
}

#[test]
fn video_frames_stream_in_order_with_timestamps() {
    let clip = testdata("WolfgangLanger_Pexels.mp4");
    let media = Media::open(&clip, &OpenOptions::default()).unwrap();
    let fps = media.info().fps.unwrap();
    let frames: Vec<_> = media
        .frames()
        .unwrap()
        .take(3)
        .collect::<Result<_, _>>()
        .unwrap();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.index, i);
        assert_eq!((f.image.width, f.image.height), (640, 360));
        assert_eq!(f.image.data.len(), 640 * 360 * 3);
        assert!((f.time_s - i as f64 / fps).abs() < 1e-9);
    }
    assert_ne!(
        frames[0].image, frames[2].image,
        "consecutive frames should differ somewhere"
    );
}

/// Writes frames `1.png..=n.png` whose grey level encodes their number.
fn write_numbered_frames(dir: &Path, n: u32) {
    for i in 1..=n {
        let mut img = RgbImage::new(32, 24);
        img.data.fill((i * 20) as u8);
        write_image(&dir.join(format!("{i}.png")), &img).unwrap();
    }
}

#[test]
fn frame_folder_is_read_in_natural_order() {
    let dir = tempfile::tempdir().unwrap();
    write_numbered_frames(dir.path(), 10);
    std::fs::write(dir.path().join("labels.txt"), "not a frame").unwrap();

    let info = json(&["media", "probe", dir.path().to_str().unwrap()]);
    assert_eq!(info["kind"], "frames");
    assert_eq!(info["frames"], 10);
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(32), Some(24))
    );
    assert_eq!(info["fps_source"], "default");

    let media = Media::open(
        dir.path(),
        &OpenOptions {
            fps: Some(200.0),
            ..Default::default()
        },
    )
    .unwrap();
    let levels: Vec<u8> = media
        .frames()
        .unwrap()
        .map(|f| f.unwrap().image.data[0])
        .collect();
    assert_eq!(levels, (1..=10).map(|i| (i * 20) as u8).collect::<Vec<_>>());
    assert_eq!(media.info().fps, Some(200.0));
}

#[test]
fn a_frame_of_another_size_in_a_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_numbered_frames(dir.path(), 3);
    write_image(&dir.path().join("4.png"), &RgbImage::new(8, 8)).unwrap();
    let media = Media::open(dir.path(), &OpenOptions::default()).unwrap();
    let results: Vec<_> = media.frames().unwrap().collect();
    assert!(
        results[..3].iter().all(|r| r.is_ok()),
        "frames before the bad one are kept"
    );
    let err = results[3].as_ref().unwrap_err().to_string();
    assert!(err.contains("4.png") && err.contains("8x8"), "{err}");
}

#[test]
fn single_image_is_one_frame() {
    let photo = testdata("single_face.jpg");
    let media = Media::open(&photo, &OpenOptions::default()).unwrap();
    assert_eq!(media.info().kind, MediaKind::Image);
    assert_eq!(media.info().frames, 1);
    let frames = media.read_all().unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].image.data.len(),
        (media.info().width * media.info().height * 3) as usize
    );
}

#[test]
fn truncated_video_is_reported_by_name() {
    let clip = testdata("WolfgangLanger_Pexels.mp4");
    let bytes = std::fs::read(&clip).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails_with(&["media", "probe", cut.to_str().unwrap()], 2);
    assert!(
        err.contains("cut.mp4") && err.contains("truncated"),
        "{err}"
    );

    // Streaming keeps every frame decoded before the cut, then reports it.
    let media = Media::open(&cut, &OpenOptions::default()).unwrap();
    let results: Vec<_> = media.frames().unwrap().collect();
    let good = results.iter().take_while(|r| r.is_ok()).count();
    assert!(
        good > 50 && good < 472,
        "{good} frames decoded before the cut"
    );
    assert!(results
        .last()
        .unwrap()
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("truncated"));

    // one policy for every command: refused by name, exit code 2 (spot used to go on with
    // the frames before the cut, and explain to record the announced 472 frames)
    for args in [vec!["spot"], vec!["explain", "--out", "e.jsonl"]] {
        let mut args = args.clone();
        args.insert(1, cut.to_str().unwrap());
        let out = crate::common::actfer()
            .current_dir(dir.path())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cut.mp4") && err.contains("truncated"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn text_file_named_mp4_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("notes.mp4");
    std::fs::write(&fake, "these are notes, not a video\n".repeat(100)).unwrap();
    let err = fails_with(&["media", "probe", fake.to_str().unwrap()], 2);
    assert!(
        err.contains("notes.mp4") && err.contains("cannot be opened"),
        "{err}"
    );
}

#[test]
fn empty_file_and_missing_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, "").unwrap();
    let err = fails_with(&["media", "probe", empty.to_str().unwrap()], 2);
    assert!(err.contains("empty.mp4") && err.contains("empty"), "{err}");

    let missing = dir.path().join("nowhere.mp4");
    let err = fails_with(&["media", "probe", missing.to_str().unwrap()], 2);
    assert!(
        err.contains("nowhere.mp4") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn corrupt_image_and_empty_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff garbage").unwrap();
    let err = fails_with(&["media", "probe", bad.to_str().unwrap()], 2);
    assert!(
        err.contains("broken.jpg") && err.contains("cannot be decoded"),
        "{err}"
    );

    let empty = dir.path().join("frames");
    std::fs::create_dir(&empty).unwrap();
    let err = fails_with(&["media", "probe", empty.to_str().unwrap()], 2);
    assert!(err.contains("frames") && err.contains("no frames"), "{err}");
}

#[test]
fn frame_limit_is_enforced() {
    let clip = testdata("single_face.mp4");
    let err = Media::open(
        &clip,
        &OpenOptions {
            max_frames: Some(10),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("limit of 10"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

/// A picture over 8192 px on a side is refused from its header, before a decode that would
/// take seconds and gigabytes: a PNG declaring 30000x30000 (only its first bytes written), a
/// JPEG declaring 10000x6000, through `media probe` and `detect`.
#[test]
fn oversized_images_are_refused_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("huge.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend(30000u32.to_be_bytes());
    bytes.extend(30000u32.to_be_bytes());
    bytes.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&png, &bytes).unwrap();
    let err = fails_with(&["media", "probe", png.to_str().unwrap()], 2);
    assert!(
        err.contains("huge.png") && err.contains("30000x30000"),
        "{err}"
    );
    assert!(err.contains("limit of 8192x8192"), "{err}");
    let jpeg = dir.path().join("wide.jpg");
    let mut bytes = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0, 0];
    bytes.extend([0xff, 0xc0, 0x00, 0x11, 8, 0x17, 0x70, 0x27, 0x10, 3]);
    std::fs::write(&jpeg, &bytes).unwrap();
    let err = fails_with(&["detect", jpeg.to_str().unwrap()], 2);
    assert!(
        err.contains("wide.jpg") && err.contains("10000x6000"),
        "{err}"
    );
}
