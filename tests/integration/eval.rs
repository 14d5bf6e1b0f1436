//! The evaluation protocols, library and `actfer eval`, on cases computed by hand: the IoU 0.5
//! boundary, empty sides, duplicate proposals, 3-class UF1/UAR, per-AU F1, EPE on a 2x2 flow,
//! `.flo` round trips, and malformed input refused with exit code 2 and a line number.

use std::path::{Path, PathBuf};

use crate::common::{actfer, fails_with};
use actfer::eval::flow::{self, Flow};
use actfer::eval::spotting::{self, Interval, Kind, SpottingOptions};
use actfer::eval::{aus, join_ids, recognition, Counts};
use actfer::media::{write_image, RgbImage};
use serde_json::Value;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `actfer eval KIND --pred P --gold G --json`, parsed.
fn eval_json(kind: &str, pred: &Path, gold: &Path, extra: &[&str]) -> Value {
    let out = actfer()
        .args(["eval", kind, "--pred", s(pred), "--gold", s(gold), "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn iv(video: &str, onset: u64, offset: u64) -> Interval {
    Interval {
        video: video.into(),
        onset,
        offset,
        kind: Kind::Micro,
    }
}

fn tpfpfn(c: &Counts) -> (u64, u64, u64) {
    (c.tp, c.fp, c.fn_)
}

fn spot(gold: &[Interval], pred: &[Interval]) -> spotting::SpottingReport {
    spotting::evaluate(gold, pred, SpottingOptions::default())
}

#[test]
fn spotting_iou_boundary() {
    // Gold 0..9 (10 frames), prediction 5..14: |A∩B| = 5 (5..9), |A∪B| = 15, IoU 1/3: no match.
    let r = spot(&[iv("v", 0, 9)], &[iv("v", 5, 14)]);
    assert_eq!(tpfpfn(&r.micro), (0, 1, 1));
    assert_eq!(r.micro.f1, 0.0);
    // Gold 0..11 (12 frames), prediction 4..15 (12): |A∩B| = 8 (4..11), |A∪B| = 16, IoU 0.5
    // exactly: a true positive.
    let r = spot(&[iv("v", 0, 11)], &[iv("v", 4, 15)]);
    assert_eq!(tpfpfn(&r.micro), (1, 0, 0));
    assert_eq!(r.matches[0].iou, 0.5);
    // One frame less, prediction 5..15 (11 frames): |A∩B| = 7, |A∪B| = 16, IoU 7/16 < 0.5.
    let r = spot(&[iv("v", 0, 11)], &[iv("v", 5, 15)]);
    assert_eq!(tpfpfn(&r.micro), (0, 1, 1));
    // The same interval on another video never matches.
    let r = spot(&[iv("v", 0, 11)], &[iv("w", 0, 11)]);
    assert_eq!(tpfpfn(&r.overall), (0, 1, 1));
}

#[test]
fn spotting_empty_sides() {
    let gold = [iv("v", 0, 9), iv("v", 40, 49)];
    // No predictions: precision 0/0 taken as 0 (there was gold to find), recall 0, F1 0.
    let r = spot(&gold, &[]);
    assert_eq!(tpfpfn(&r.overall), (0, 0, 2));
    assert_eq!(
        (r.overall.precision, r.overall.recall, r.overall.f1),
        (0.0, 0.0, 0.0)
    );
    // No gold: recall 0/0 taken as 0 (something was claimed), precision 0, F1 0.
    let r = spot(&[], &gold);
    assert_eq!(tpfpfn(&r.overall), (0, 2, 0));
    assert_eq!(
        (r.overall.precision, r.overall.recall, r.overall.f1),
        (0.0, 0.0, 0.0)
    );
    // Both empty: nothing to find and nothing claimed, 1 everywhere.
    let r = spot(&[], &[]);
    assert_eq!(
        (r.overall.precision, r.overall.recall, r.overall.f1),
        (1.0, 1.0, 1.0)
    );
    // The macro kind is empty in every case above.
    assert_eq!(r.macro_.f1, 1.0);
}

#[test]
fn spotting_duplicate_proposals_match_once() {
    // Three proposals of gold 10..29 (20 frames): 10..29 (IoU 1), 12..29 (18/20), 10..27
    // (18/20). The exact one wins; the others are false positives. Gold 100..119 is missed.
    let gold = [iv("v", 10, 29), iv("v", 100, 119)];
    let pred = [iv("v", 12, 29), iv("v", 10, 29), iv("v", 10, 27)];
    let r = spot(&gold, &pred);
    assert_eq!(tpfpfn(&r.micro), (1, 2, 1));
    assert_eq!((r.matches[0].gold, r.matches[0].pred), (0, 1));
    // P = 1/3, R = 1/2, F1 = 2/(2+2+1) = 0.4.
    assert_eq!(r.micro.precision, 1.0 / 3.0);
    assert_eq!(r.micro.recall, 0.5);
    assert!((r.micro.f1 - 0.4).abs() < 1e-12);
}

#[test]
fn spotting_cli_json_and_text() {
    let d = Dir::new();
    let gold = d.write(
        "gold.jsonl",
        concat!(
            r#"{"video": "v", "onset": 0, "offset": 11, "kind": "micro"}"#,
            "\n\n",
            r#"{"video": "v", "onset": 100, "offset": 199, "kind": "macro"}"#,
            "\n"
        ),
    );
    let pred = d.write(
        "pred.jsonl",
        concat!(
            r#"{"video": "v", "onset": 4, "offset": 15, "kind": "micro"}"#,
            "\n",
            r#"{"video": "v", "onset": 4, "offset": 15, "kind": "micro"}"#,
            "\n",
            r#"{"video": "v", "onset": 100, "offset": 199, "kind": "micro"}"#,
            "\n"
        ),
    );
    let v = eval_json("spotting", &pred, &gold, &[]);
    assert_eq!(v["micro"]["tp"], 1);
    assert_eq!(v["micro"]["fp"], 2);
    assert_eq!(v["macro"]["fn"], 1);
    assert_eq!(v["overall"]["f1"], 2.0 / (2.0 + 2.0 + 1.0));
    // Matching across kinds, the micro proposal 100..199 finds the macro gold (TP under macro).
    let v = eval_json("spotting", &pred, &gold, &["--any-kind"]);
    assert_eq!(v["macro"]["tp"], 1);
    assert_eq!(v["overall"]["tp"], 2);
    let out = actfer()
        .args(["eval", "spotting", "--pred", s(&pred), "--gold", s(&gold)])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("overall"), "{text}");
    // Empty files on both sides: a valid evaluation with F1 1.
    let empty = d.write("empty.jsonl", "");
    let v = eval_json("spotting", &empty, &empty, &[]);
    assert_eq!(v["overall"]["f1"], 1.0);
}

/// Predictions that name no gold video are a naming mismatch, refused naming the gold file;
/// an empty prediction file is a spotter that found nothing (F1 0, no error).
#[test]
fn spotting_with_no_video_in_common_is_refused() {
    let d = Dir::new();
    let gold = d.write(
        "gold.jsonl",
        r#"{"video": "s01/ep01", "onset": 0, "offset": 11, "kind": "micro"}"#,
    );
    let pred = d.write(
        "pred.jsonl",
        r#"{"video": "s01_ep01.mp4", "onset": 0, "offset": 11, "kind": "micro"}"#,
    );
    let err = crate::common::fails_with(
        &["eval", "spotting", "--pred", s(&pred), "--gold", s(&gold)],
        2,
    );
    assert!(
        err.contains("gold.jsonl") && err.contains("s01_ep01.mp4"),
        "{err}"
    );
    let empty = d.write("empty.jsonl", "");
    let v = eval_json("spotting", &empty, &gold, &[]);
    assert_eq!(v["overall"]["fn"], 1);
    // one video outside the gold file: a warning, in plain text when stderr is no terminal
    let both = d.write(
        "both.jsonl",
        concat!(
            r#"{"video": "s01/ep01", "onset": 0, "offset": 11, "kind": "micro"}"#,
            "\n",
            r#"{"video": "s01_ep01.mp4", "onset": 0, "offset": 11, "kind": "micro"}"#,
        ),
    );
    let out = actfer()
        .args(["eval", "spotting", "--pred", s(&both), "--gold", s(&gold)])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("1 predicted video(s) are not in the gold file"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "colour codes in {err:?}");
}

#[test]
fn malformed_lines_exit_2_naming_the_line() {
    let d = Dir::new();
    let good = d.write(
        "good.jsonl",
        "{\"video\": \"v\", \"onset\": 1, \"offset\": 2, \"kind\": \"micro\"}\n",
    );
    let bad = d.write(
        "bad.jsonl",
        "{\"video\": \"v\", \"onset\": 1, \"offset\": 2, \"kind\": \"micro\"}\n{\"video\": \"v\", \"onset\": 1,\n",
    );
    let err = fails_with(
        &["eval", "spotting", "--pred", s(&good), "--gold", s(&bad)],
        2,
    );
    assert!(err.contains("bad.jsonl: line 2, column"), "{err}");
    let reversed = d.write(
        "reversed.jsonl",
        "\n\n{\"video\": \"v\", \"onset\": 9, \"offset\": 2, \"kind\": \"macro\"}\n",
    );
    let err = fails_with(
        &[
            "eval",
            "spotting",
            "--pred",
            s(&reversed),
            "--gold",
            s(&good),
        ],
        2,
    );
    assert!(
        err.contains("reversed.jsonl: line 3: onset 9 is after offset 2"),
        "{err}"
    );
    let kind = d.write(
        "kind.jsonl",
        "{\"video\": \"v\", \"onset\": 1, \"offset\": 2, \"kind\": \"nano\"}\n",
    );
    let err = fails_with(
        &["eval", "spotting", "--pred", s(&kind), "--gold", s(&good)],
        2,
    );
    assert!(err.contains("kind.jsonl: line 1, column"), "{err}");
    let labels = d.write(
        "labels.jsonl",
        "{\"id\": \"a\", \"label\": \"x\"}\n{\"id\": \"a\", \"label\": \"y\"}\n",
    );
    let err = fails_with(
        &[
            "eval",
            "recognition",
            "--pred",
            s(&labels),
            "--gold",
            s(&labels),
        ],
        2,
    );
    assert!(
        err.contains("line 2: id \"a\" already appears on line 1"),
        "{err}"
    );
    let au = d.write(
        "au.jsonl",
        "{\"id\": \"a\", \"aus\": [\"AU12\"]}\n{\"id\": \"b\", \"aus\": [\"AU99\"]}\n",
    );
    let err = fails_with(&["eval", "aus", "--pred", s(&au), "--gold", s(&au)], 2);
    assert!(err.contains("au.jsonl: line 2, column"), "{err}");
    let err = fails_with(
        &[
            "eval",
            "aus",
            "--pred",
            s(&au),
            "--gold",
            s(&d.path("none.jsonl")),
        ],
        2,
    );
    assert!(err.contains("none.jsonl"), "{err}");
}

/// Gold and predictions of the 3-class recognition case.
const RECOGNITION_GOLD: &str = "p1 positive\np2 positive\np3 positive\np4 positive\nn1 negative\nn2 negative\nn3 negative\ns1 surprise\ns2 surprise";
const RECOGNITION_PRED: &str = "p1 positive\np2 Positive\np3 negative\np4 surprise\nn1 negative\nn2 negative\nn3 positive\ns1 surprise\ns2 negative";

fn labels(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| {
            let (id, label) = l.split_once(' ').unwrap();
            (id.to_string(), label.to_string())
        })
        .collect()
}

fn to_jsonl(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(id, label)| serde_json::json!({"id": id, "label": label}).to_string() + "\n")
        .collect()
}

#[test]
fn recognition_three_classes_by_hand() {
    // Confusion, rows gold, columns predicted (negative, positive, surprise):
    //   negative  2 1 0
    //   positive  1 2 1
    //   surprise  1 0 1
    // negative: TP 2, FP 2 (column sum 4 - 2), FN 1: F1 = 4/7, recall 2/3
    // positive: TP 2, FP 1, FN 2: F1 = 4/7, recall 2/4
    // surprise: TP 1, FP 1, FN 1: F1 = 2/4, recall 1/2
    // UF1 = (4/7 + 4/7 + 1/2)/3 = 23/42; UAR = (2/3 + 1/2 + 1/2)/3 = 5/9; accuracy 5/9.
    let (gold, pred) = (labels(RECOGNITION_GOLD), labels(RECOGNITION_PRED));
    let r = recognition::evaluate(&join_ids(&gold, &pred).unwrap(), Default::default()).unwrap();
    assert_eq!(
        r.confusion,
        vec![vec![2, 1, 0], vec![1, 2, 1], vec![1, 0, 1]]
    );
    let f1: Vec<f64> = r.classes.iter().map(|c| c.counts.f1).collect();
    assert_eq!(f1, [4.0 / 7.0, 4.0 / 7.0, 0.5]);
    assert!((r.uf1 - 23.0 / 42.0).abs() < 1e-12);
    assert!((r.uar - 5.0 / 9.0).abs() < 1e-12);
    assert!((r.accuracy - 5.0 / 9.0).abs() < 1e-12);

    let d = Dir::new();
    let g = d.write("gold.jsonl", &to_jsonl(&gold));
    // The CLI reads the same case; p4 has no prediction and an extra id z9 is ignored, so
    // positive loses its surprise prediction to the missing column: positive FN stays 2,
    // surprise FP drops to 0, F1 2/3; UF1 = (4/7 + 4/7 + 2/3)/3 = 38/63.
    let mut p = pred.clone();
    p.retain(|(id, _)| id != "p4");
    p.push(("z9".into(), "positive".into()));
    let p = d.write("pred.jsonl", &to_jsonl(&p));
    let v = eval_json("recognition", &p, &g, &[]);
    assert!(
        (v["uf1"].as_f64().unwrap() - 38.0 / 63.0).abs() < 1e-12,
        "{v}"
    );
    assert_eq!(v["missing"], serde_json::json!([0, 1, 0]));
    assert_eq!(v["missing_ids"], serde_json::json!(["p4"]));
    assert_eq!(v["unmatched_ids"], serde_json::json!(["z9"]));
    let out = actfer()
        .args(["eval", "recognition", "--pred", s(&p), "--gold", s(&g)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("UF1 0.6032"), "{text}");
    assert!(text.contains("(missing)"), "{text}");
}

#[test]
fn au_f1_by_hand() {
    let d = Dir::new();
    let gold = d.write(
        "gold.jsonl",
        concat!(
            r#"{"id": "s1", "aus": ["AU1", "AU2"]}"#,
            "\n",
            r#"{"id": "s2", "aus": ["AU12"]}"#,
            "\n",
            r#"{"id": "s3", "aus": ["AU1", "R12"]}"#,
            "\n",
            r#"{"id": "s4", "aus": []}"#,
            "\n"
        ),
    );
    let pred = d.write(
        "pred.jsonl",
        concat!(
            r#"{"id": "s1", "aus": ["AU1"]}"#,
            "\n",
            r#"{"id": "s2", "aus": ["L12", "AU4"]}"#,
            "\n",
            r#"{"id": "s3", "aus": ["AU2", "12"]}"#,
            "\n",
            r#"{"id": "s4", "aus": ["AU4"]}"#,
            "\n"
        ),
    );
    // Sides ignored: AU1 gold s1 s3, predicted s1: TP 1 FN 1, F1 2/3. AU2 gold s1, predicted
    // s3: TP 0 FP 1 FN 1, F1 0. AU12 gold s2 s3, predicted s2 (L12) s3: F1 1. AU4 is in no
    // gold sample: extra, FP 2. Mean F1 (2/3 + 0 + 1)/3 = 5/9.
    let g = aus::read_au_sets(&gold).unwrap();
    let p = aus::read_au_sets(&pred).unwrap();
    let r = aus::evaluate(&join_ids(&g, &p).unwrap(), Default::default());
    let rows: Vec<(String, f64)> = r
        .aus
        .iter()
        .map(|a| (a.au.to_string(), a.counts.f1))
        .collect();
    assert_eq!(
        rows,
        [
            ("AU1".to_string(), 2.0 / 3.0),
            ("AU2".into(), 0.0),
            ("AU12".into(), 1.0)
        ]
    );
    assert!((r.mean_f1 - 5.0 / 9.0).abs() < 1e-12);
    assert_eq!(
        (r.extra[0].au.to_string(), r.extra[0].counts.fp),
        ("AU4".into(), 2)
    );
    // Sides counted: AU12 (gold s2) is predicted only on s3: F1 0; R12 (gold s3) never
    // predicted: F1 0; L12 joins the extras. Mean (2/3 + 0 + 0 + 0)/4 = 1/6.
    let v = eval_json("aus", &pred, &gold, &["--sides"]);
    assert!(
        (v["mean_f1"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-12,
        "{v}"
    );
    let aus: Vec<&str> = v["aus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["au"].as_str().unwrap())
        .collect();
    assert_eq!(aus, ["AU1", "AU2", "AU12", "R12"]);
    let extra: Vec<&str> = v["extra"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["au"].as_str().unwrap())
        .collect();
    assert_eq!(extra, ["AU4", "L12"]);
}

/// Gold and predicted 2x2 flows of the EPE case.
fn flows() -> (Flow, Flow) {
    let gold = Flow {
        width: 2,
        height: 2,
        uv: vec![0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 3.0, 4.0],
    };
    let pred = Flow {
        width: 2,
        height: 2,
        uv: vec![0.0, 0.0, 1.0, 1.0, 3.0, 6.0, 0.0, 0.0],
    };
    (gold, pred)
}

#[test]
fn epe_by_hand() {
    // Errors per pixel: (0,0)-(0,0) = 0; (1,1)-(1,0) = 1; (3,6)-(0,2) = sqrt(9+16) = 5;
    // (0,0)-(3,4) = 5. EPE = 11/4. Gold magnitudes 0, 1, 2, 5: small {0} EPE 0, medium {1, 5}
    // EPE 3, large {5} EPE 5. Mask on pixels 0 and 3: (0 + 5)/2.
    let (gold, pred) = flows();
    let mask = [true, false, false, true];
    let r = flow::epe(&pred, &gold, Some(&mask)).unwrap();
    assert_eq!(r.all.epe, Some(2.75));
    assert_eq!(r.masked.unwrap().epe, Some(2.5));
    assert_eq!(
        (r.small.epe, r.medium.epe, r.large.epe),
        (Some(0.0), Some(3.0), Some(5.0))
    );
    assert_eq!((r.small.pixels, r.medium.pixels, r.large.pixels), (1, 2, 1));

    // Through the CLI: folders of two files (the case and a perfect prediction of it) with
    // masks. Pooled over 8 pixels: 11/8; inside the masks (pixels 0, 3 and all of the second):
    // (0 + 5 + 0 * 4)/6.
    let d = Dir::new();
    for dir in ["gold", "pred", "mask"] {
        std::fs::create_dir_all(d.path(dir)).unwrap();
    }
    flow::write_flo(&d.path("gold/a.flo"), &gold).unwrap();
    flow::write_flo(&d.path("pred/a.flo"), &pred).unwrap();
    flow::write_flo(&d.path("gold/b.flo"), &gold).unwrap();
    flow::write_flo(&d.path("pred/b.flo"), &gold).unwrap();
    flow::write_flo(&d.path("pred/extra.flo"), &gold).unwrap();
    let mut m = RgbImage::new(2, 2);
    m.data[0] = 255;
    m.data[9 + 2] = 1;
    write_image(&d.path("mask/a.png"), &m).unwrap();
    m.data.fill(200);
    write_image(&d.path("mask/b.png"), &m).unwrap();
    let v = eval_json(
        "flow",
        &d.path("pred"),
        &d.path("gold"),
        &["--mask", s(&d.path("mask"))],
    );
    assert_eq!(v["pooled"]["all"]["epe"], 11.0 / 8.0);
    assert_eq!(v["pooled"]["masked"]["epe"], 5.0 / 6.0);
    assert_eq!(v["files"][0]["all"]["epe"], 2.75);
    assert_eq!(v["files"][0]["masked"]["epe"], 2.5);
    assert_eq!(v["unmatched"], serde_json::json!(["extra.flo"]));
    // One file against one file, no mask.
    let v = eval_json("flow", &d.path("pred/a.flo"), &d.path("gold/a.flo"), &[]);
    assert_eq!(v["pooled"]["all"]["epe"], 2.75);
    assert_eq!(v["pooled"]["masked"], Value::Null);
    // A gold file with no prediction is refused.
    std::fs::remove_file(d.path("pred/b.flo")).unwrap();
    let err = fails_with(
        &[
            "eval",
            "flow",
            "--pred",
            s(&d.path("pred")),
            "--gold",
            s(&d.path("gold")),
        ],
        2,
    );
    assert!(
        err.contains("no prediction for 1 of the 2 gold files (first: b.flo)"),
        "{err}"
    );
}

#[test]
fn flo_round_trip_and_truncation() {
    let d = Dir::new();
    let f = Flow {
        width: 3,
        height: 2,
        uv: (0..12).map(|i| i as f32 * 0.25 - 1.5).collect(),
    };
    let p = d.path("f.flo");
    flow::write_flo(&p, &f).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), 12 + 3 * 2 * 8);
    assert_eq!(&bytes[..4], b"PIEH");
    assert_eq!(&bytes[4..12], &[3, 0, 0, 0, 2, 0, 0, 0]);
    // Row 0, pixel 1's v is value index 3: 3 * 0.25 - 1.5.
    assert_eq!(&bytes[12 + 12..12 + 16], &(-0.75f32).to_le_bytes());
    assert_eq!(flow::read_flo(&p).unwrap(), f);

    let cut = d.path("cut.flo");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let err = flow::read_flo(&cut).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(
        msg.contains("cut.flo: truncated .flo: 57 bytes, expected 60 for 3x2"),
        "{msg}"
    );
    let err = fails_with(&["eval", "flow", "--pred", s(&cut), "--gold", s(&p)], 2);
    assert!(err.contains("truncated"), "{err}");
    assert!(flow::write_flo(
        &d.path("bad.flo"),
        &Flow {
            width: 2,
            height: 2,
            uv: vec![0.0; 3]
        }
    )
    .is_err());
}
