//! SynthME generation on real identities: determinism (same seed, same bytes), and ground
//! truth that is right: warping frame t+1 back by the ground-truth flow gives frame t within
//! the added noise, for every nuisance setting.

use std::sync::OnceLock;

use actfer::eval::flow::{read_flo, Flow};
use actfer::face::pipeline::FacePipeline;
use actfer::facs::emotion::{Emotion, MeClass};
use actfer::media::{read_image, RgbImage};
use actfer::models::ModelStore;
use actfer::synth::clip::{face_mask, settle_blink, settle_event, Scene};
use actfer::synth::generate::{generate, FlowOutput, Settings, GENERATOR_VERSION};
use actfer::synth::identity::{base_image, load_looks, testdata_dir, Augment, Look, Split};
use actfer::synth::labels::{
    AuLabel, Blink, Event, HeadMotion, Kind, Light, Nuisance, Wave, SCHEMA,
};
use actfer::synth::rng::Rng;
use actfer::synth::spec::Switches;
use actfer::synth::warp_backward;
use candle_core::Device;

use crate::common::files;

fn looks() -> &'static Vec<Look> {
    static LOOKS: OnceLock<Vec<Look>> = OnceLock::new();
    LOOKS.get_or_init(|| {
        let store = ModelStore::from_env().unwrap();
        let pipeline = FacePipeline::load(&store, &Device::Cpu).unwrap();
        load_looks(&pipeline, &testdata_dir(store.home()), &[Split::Test]).unwrap()
    })
}

fn settings(seed: u64, clips: usize) -> Settings {
    Settings {
        schema: SCHEMA.to_string(),
        version: GENERATOR_VERSION,
        seed,
        clips,
        split: Some(Split::Test),
        long: false,
        fps: 30.0,
        size: 64,
        flow: FlowOutput::All,
        video: false,
        switches: Switches::ALL,
        sheets: true,
    }
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let labels = generate(&a, &settings(7, 3), looks(), &|| {}).unwrap();
    generate(&b, &settings(7, 3), looks(), &|| {}).unwrap();
    generate(&c, &settings(8, 3), looks(), &|| {}).unwrap();
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert!(fa.len() > 20, "{} files", fa.len());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs between two runs with seed 7");
    }
    assert_ne!(fa.get("labels.json"), fc.get("labels.json"));
    // Labels read back, every clip from a test identity, frames and flows where they say.
    assert_eq!(labels.clips.len(), 3);
    for clip in &labels.clips {
        assert_eq!(clip.split, Split::Test);
        let frames = a.join(&clip.files.frames);
        assert_eq!(std::fs::read_dir(&frames).unwrap().count(), clip.frames);
        let flow = read_flo(&a.join(&clip.files.flow).join("00000.flo")).unwrap();
        assert_eq!((flow.width, flow.height), (64, 64));
        for (k, e) in clip.events.iter().enumerate() {
            assert!(a
                .join(&clip.files.flow)
                .join(format!("onset_apex_{k}.flo"))
                .is_file());
            assert!(e.apex_displacement_px > 0.0);
            assert!(a.join(&clip.files.sheets[k]).is_file());
        }
        assert!(clip.flow_residual_px < 0.01, "{}", clip.flow_residual_px);
    }
    // A rerun over a finished folder keeps it; other settings are refused.
    generate(&a, &settings(7, 3), looks(), &|| {}).unwrap();
    assert!(generate(&a, &settings(9, 3), looks(), &|| {}).is_err());
}

fn waves(a: f32, f: f32) -> [Wave; 2] {
    [
        Wave {
            amplitude: a,
            frequency_hz: f,
            phase: 0.3,
        },
        Wave {
            amplitude: 0.4 * a,
            frequency_hz: 2.1 * f,
            phase: 1.0,
        },
    ]
}

/// A macro smile with raised brows (large, fast motion) and a blink, on one test identity.
fn events() -> (Vec<Event>, Vec<Blink>) {
    let au = |au, intensity| AuLabel {
        au,
        side: None,
        intensity,
    };
    let e = Event {
        kind: Kind::Macro,
        emotion: Emotion::Happiness,
        me_class: MeClass::Positive,
        aus: vec![au(6, 1.0), au(12, 1.0), au(2, 0.8)],
        onset: 2,
        apex: 8,
        offset: 14,
        apex_displacement_px: 0.0,
        apex_displacement_128: 8.0,
    };
    let b = Blink {
        onset: 9,
        apex: 11,
        offset: 14,
        intensity: 1.0,
    };
    (vec![e], vec![b])
}

/// Mean absolute difference over the face mask between `a` and `b`, 0-255.
fn masked_error(a: &RgbImage, b: &RgbImage, mask: &RgbImage) -> f32 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for i in 0..(a.width * a.height) as usize {
        if mask.data[3 * i] > 0 {
            for c in 0..3 {
                sum += (a.data[3 * i + c] as f64 - b.data[3 * i + c] as f64).abs();
            }
            n += 3;
        }
    }
    (sum / n as f64) as f32
}

/// A frame without photometric nuisances, rounded to 8 bits.
fn clean(scene: &Scene, src: &[[f32; 2]]) -> RgbImage {
    let mut img = RgbImage::new(scene.size, scene.size);
    for (o, v) in img.data.iter_mut().zip(scene.render(src)) {
        *o = v.round().clamp(0.0, 255.0) as u8;
    }
    img
}

#[test]
fn warping_back_by_ground_truth_reproduces_the_frame_for_every_nuisance() {
    let size = 128;
    let look = &looks()[0];
    let base = base_image(look, size, 8, &Augment::NONE).unwrap();
    let head = HeadMotion {
        rotation_deg: waves(1.5, 0.7),
        shift_x_px: waves(1.5, 0.5),
        shift_y_px: waves(1.0, 0.6),
        scale: waves(0.01, 0.4),
    };
    let settings: Vec<(&str, Nuisance, f32)> = vec![
        ("clean", Nuisance::default(), 0.0),
        (
            "head",
            Nuisance {
                head: Some(head),
                ..Default::default()
            },
            0.0,
        ),
        (
            "light",
            Nuisance {
                light: Some(Light {
                    gain: 0.15,
                    tilt: 0.2,
                }),
                ..Default::default()
            },
            0.0,
        ),
        (
            "noise",
            Nuisance {
                noise_sigma: Some(3.0),
                ..Default::default()
            },
            3.0,
        ),
        (
            "jpeg",
            Nuisance {
                jpeg_quality: Some(70),
                ..Default::default()
            },
            0.0,
        ),
        (
            "all",
            Nuisance {
                head: Some(head),
                light: Some(Light {
                    gain: -0.15,
                    tilt: 0.2,
                }),
                noise_sigma: Some(2.0),
                jpeg_quality: Some(80),
            },
            2.0,
        ),
    ];
    let frames = 16;
    for (name, nuisance, sigma) in settings {
        let (mut ev, mut blinks) = events();
        {
            let probe = Scene::new(&base, size, 30.0, &[], &[], &nuisance);
            let w = (base.landmarks[0][0] - base.landmarks[16][0])
                .hypot(base.landmarks[0][1] - base.landmarks[16][1]);
            settle_event(&probe, &mut ev[0], w).unwrap();
            let with_event = Scene::new(&base, size, 30.0, &ev, &[], &nuisance);
            settle_blink(&with_event, &mut blinks[0]).unwrap();
        }
        let scene = Scene::new(&base, size, 30.0, &ev, &blinks, &nuisance);
        let noise = Rng::new(3);
        let lm0: [[f32; 2]; 68] = {
            let h = scene.frame_from_canvas(0);
            std::array::from_fn(|i| h.apply(base.landmarks[i]))
        };
        let mask = face_mask(&lm0, size);
        let mut prev: Option<(RgbImage, Vec<[f32; 2]>)> = None;
        let mut worst = (0.0f32, 0usize);
        let mut onset = None;
        for t in 0..frames {
            let g = scene.geometry(t).unwrap();
            let src = scene.source_map(&g);
            let img = scene.finish(t, scene.render(&src), frames, &noise).unwrap();
            if let Some((pimg, psrc)) = &prev {
                let (flow, residual) = scene.flow(psrc, &g, &g.frame_from_canvas);
                assert!(residual < 1e-3, "{name} frame {t}: residual {residual}");
                let back = warp_backward(&img, &flow).unwrap();
                let err = masked_error(&back, pimg, &mask);
                if err > worst.0 {
                    worst = (err, t);
                }
            }
            if t == 2 {
                onset = Some((clean(&scene, &src), src.clone()));
            }
            if t == 8 {
                // Onset -> apex, before the photometric nuisances: the ground truth must beat
                // "nothing moved" by far.
                let (oimg, osrc) = onset.as_ref().unwrap();
                let img = clean(&scene, &src);
                let (flow, _) = scene.flow(osrc, &g, &g.frame_from_canvas);
                let with = masked_error(&warp_backward(&img, &flow).unwrap(), oimg, &mask);
                let without = masked_error(
                    &warp_backward(&img, &Flow::zeros(128, 128)).unwrap(),
                    oimg,
                    &mask,
                );
                assert!(
                    with < 0.5 * without,
                    "{name}: onset->apex error {with} vs {without} with zero flow"
                );
            }
            prev = Some((img, src));
        }
        // Bilinear resampling costs up to ~0.8 grey on this texture (most where the blink
        // squeezes the eye); noise adds about sigma (both
        // frames carry it); JPEG at quality 70 about 2; light changes a frame by at most
        // gain' * 255 per frame (~1.6 grey at 16 frames).
        let bound = 1.2
            + 1.2 * sigma
            + if nuisance.jpeg_quality.is_some() {
                2.0
            } else {
                0.0
            }
            + if nuisance.light.is_some() { 2.0 } else { 0.0 };
        assert!(
            worst.0 < bound,
            "{name}: warp-back error {} at frame {} over bound {bound}",
            worst.0,
            worst.1
        );
        eprintln!(
            "{name}: worst warp-back error {:.3} (frame {}), bound {bound}",
            worst.0, worst.1
        );
    }
}

#[test]
fn long_videos_hold_events_apart_with_their_flows() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = settings(3, 1);
    s.long = true;
    s.flow = FlowOutput::Apex;
    s.size = 64;
    s.fps = 15.0;
    let labels = generate(tmp.path(), &s, looks(), &|| {}).unwrap();
    let clip = &labels.clips[0];
    assert_eq!(clip.kind, Kind::Long);
    assert!((300..=900).contains(&clip.frames), "{}", clip.frames);
    for (k, e) in clip.events.iter().enumerate() {
        assert!(e.offset < clip.frames);
        let f = read_flo(
            &tmp.path()
                .join(&clip.files.flow)
                .join(format!("onset_apex_{k}.flo")),
        )
        .unwrap();
        let largest = f.uv.chunks(2).fold(0.0f32, |m, v| m.max(v[0].hypot(v[1])));
        assert!(
            largest > 0.3 * e.apex_displacement_px,
            "event {k}: {largest}"
        );
    }
    let first = read_image(&tmp.path().join(&clip.files.frames).join("00000.png")).unwrap();
    assert_eq!((first.width, first.height), (64, 64));
}

#[test]
fn cli_writes_a_dataset_and_refuses_bad_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("actfer")
            .unwrap()
            .arg("synth")
            .args(args)
            .output()
            .unwrap()
    };
    let o = out.to_str().unwrap();
    let ok = run(&[
        "--out", o, "--seed", "3", "--clips", "2", "--size", "64", "--split", "val",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = std::fs::read_to_string(out.join("labels.json")).unwrap();
    let labels: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(labels["schema"], "actfer.synthme/1");
    assert_eq!(labels["clips"].as_array().unwrap().len(), 2);
    assert!(labels["clips"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["split"] == "val" && c["person"] == "group-4"));
    // Other settings into the same folder, a folder that is not a dataset, a bad size.
    let other = run(&["--out", o, "--seed", "4", "--clips", "2", "--size", "64"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("other settings"));
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("notes.txt"), "keep").unwrap();
    let p = run(&["--out", plain.to_str().unwrap(), "--clips", "1"]);
    assert_eq!(p.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(plain.join("notes.txt")).unwrap(),
        "keep"
    );
    let small = run(&[
        "--out",
        tmp.path().join("x").to_str().unwrap(),
        "--size",
        "8",
    ]);
    assert_eq!(small.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&small.stderr).contains("--size"));
}
