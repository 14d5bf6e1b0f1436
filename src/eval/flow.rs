//! Optical flow: average end-point error (EPE) overall, inside a mask and per amplitude bin,
//! and the Middlebury `.flo` format.
//!
//! `EPE = mean over pixels of sqrt((u_pred - u_gold)^2 + (v_pred - v_gold)^2)`, in pixels.
//! Gold pixels of unknown flow are left out everywhere: a component that is not finite or whose
//! magnitude is at least 1e9 (the Middlebury convention). The amplitude bins split the known
//! gold pixels by gold magnitude `m = sqrt(u^2 + v^2)`: `small` m < 1 px, `medium` 1 <= m <= 3,
//! `large` m > 3. A statistic over no pixel has `epe: null` (`None`). Several files are pooled
//! per pixel ([`Epe::merge`]): the pooled EPE is the sum of errors over the sum of pixels.
//!
//! `.flo`: little-endian, the f32 magic 202021.25 (bytes `PIEH`), the width and the height as
//! i32, then `height` rows of `width` interleaved (u, v) f32 pairs; nothing after them.
//! [`decode_flo`] refuses a wrong magic, a non-positive or over-large size, and a file shorter
//! (truncated) or longer than the size says.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// The first four bytes of a `.flo` file, as an f32.
pub const FLO_MAGIC: f32 = 202021.25;
/// Largest width or height [`decode_flo`] accepts.
pub const FLO_MAX_SIDE: i32 = 1 << 15;
/// Gold flow at or above this magnitude in either component is unknown.
pub const UNKNOWN_FLOW: f32 = 1e9;
/// Bin edges on gold magnitude, px: `small` < 1 <= `medium` <= 3 < `large`.
pub const BIN_EDGES: [f32; 2] = [1.0, 3.0];

/// A dense flow field: `uv[2 * (y * width + x)]` is u (x motion), `+ 1` is v (y motion).
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub width: usize,
    pub height: usize,
    pub uv: Vec<f32>,
}

impl Flow {
    /// A zero flow.
    pub fn zeros(width: usize, height: usize) -> Flow {
        Flow {
            width,
            height,
            uv: vec![0.0; width * height * 2],
        }
    }

    /// The (u, v) of column `x`, row `y`.
    pub fn at(&self, x: usize, y: usize) -> (f32, f32) {
        let i = 2 * (y * self.width + x);
        (self.uv[i], self.uv[i + 1])
    }
}

/// Decodes `.flo` bytes; `path` names the source in errors.
pub fn decode_flo(bytes: &[u8], path: &Path) -> Result<Flow> {
    let bad = |reason: String| Error::bad_input(path, reason);
    if bytes.len() < 12 {
        return Err(bad(format!(
            "not a .flo file: {} bytes, shorter than the 12-byte header",
            bytes.len()
        )));
    }
    let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
    let magic = f32::from_le_bytes(word(0));
    if magic != FLO_MAGIC {
        return Err(bad(format!(
            "not a .flo file: magic {magic} (bytes {:?}), expected {FLO_MAGIC} (\"PIEH\")",
            word(0)
        )));
    }
    let (w, h) = (i32::from_le_bytes(word(4)), i32::from_le_bytes(word(8)));
    if !(1..=FLO_MAX_SIDE).contains(&w) || !(1..=FLO_MAX_SIDE).contains(&h) {
        return Err(bad(format!(
            "bad .flo size {w}x{h} (width and height must be 1..={FLO_MAX_SIDE})"
        )));
    }
    let (width, height) = (w as usize, h as usize);
    let expected = 12 + width * height * 8;
    if bytes.len() < expected {
        return Err(bad(format!(
            "truncated .flo: {} bytes, expected {expected} for {width}x{height}",
            bytes.len()
        )));
    }
    if bytes.len() > expected {
        return Err(bad(format!(
            "{} bytes after the flow of a {width}x{height} .flo ({expected} bytes expected)",
            bytes.len() - expected
        )));
    }
    let uv = bytes[12..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Flow { width, height, uv })
}

/// Encodes a flow as `.flo` bytes.
pub fn encode_flo(flow: &Flow) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + flow.uv.len() * 4);
    out.extend_from_slice(&FLO_MAGIC.to_le_bytes());
    out.extend_from_slice(&(flow.width as i32).to_le_bytes());
    out.extend_from_slice(&(flow.height as i32).to_le_bytes());
    for v in &flow.uv {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads a `.flo` file.
pub fn read_flo(path: &Path) -> Result<Flow> {
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    decode_flo(&bytes, path)
}

/// Writes a `.flo` file. Refuses a flow whose `uv` does not hold `width * height` pairs or
/// whose size is outside what [`decode_flo`] reads back.
pub fn write_flo(path: &Path, flow: &Flow) -> Result<()> {
    let side = 1..=FLO_MAX_SIDE as usize;
    if !side.contains(&flow.width)
        || !side.contains(&flow.height)
        || flow.uv.len() != flow.width * flow.height * 2
    {
        return Err(Error::bad_input(
            path,
            format!(
                "cannot write a {}x{} flow holding {} values (sides 1..={FLO_MAX_SIDE}, 2 values a pixel)",
                flow.width,
                flow.height,
                flow.uv.len()
            ),
        ));
    }
    std::fs::write(path, encode_flo(flow)).map_err(|e| Error::io(path.display().to_string(), e))
}

/// A mean end-point error over some pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EpeStat {
    pub pixels: u64,
    /// Sum of the end-point errors, px.
    pub sum: f64,
    /// `sum / pixels`; `None` over no pixel.
    pub epe: Option<f64>,
}

impl EpeStat {
    fn push(&mut self, e: f64) {
        self.pixels += 1;
        self.sum += e;
        self.epe = Some(self.sum / self.pixels as f64);
    }

    fn merge(&mut self, other: &EpeStat) {
        self.pixels += other.pixels;
        self.sum += other.sum;
        self.epe = (self.pixels > 0).then(|| self.sum / self.pixels as f64);
    }
}

/// EPE overall, inside the mask (when one was given), and per gold-magnitude bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Epe {
    pub all: EpeStat,
    /// `None` without a mask.
    pub masked: Option<EpeStat>,
    /// Gold magnitude < 1 px.
    pub small: EpeStat,
    /// 1 <= gold magnitude <= 3 px.
    pub medium: EpeStat,
    /// Gold magnitude > 3 px.
    pub large: EpeStat,
    /// Gold pixels of unknown flow, left out.
    pub unknown: u64,
}

impl Epe {
    /// Pools another file's statistics into this one, pixel by pixel.
    pub fn merge(&mut self, other: &Epe) {
        self.all.merge(&other.all);
        match (&mut self.masked, &other.masked) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.masked = Some(*b),
            _ => {}
        }
        self.small.merge(&other.small);
        self.medium.merge(&other.medium);
        self.large.merge(&other.large);
        self.unknown += other.unknown;
    }
}

/// Whether a gold flow vector is unknown (the module docs).
pub fn is_unknown(u: f32, v: f32) -> bool {
    !u.is_finite() || !v.is_finite() || u.abs() >= UNKNOWN_FLOW || v.abs() >= UNKNOWN_FLOW
}

/// The EPE of `pred` against `gold`; `mask` (one bool a pixel, row-major, true = inside) adds
/// the masked statistic. Refuses differing sizes and a non-finite prediction where gold is
/// known.
pub fn epe(pred: &Flow, gold: &Flow, mask: Option<&[bool]>) -> Result<Epe, String> {
    if (pred.width, pred.height) != (gold.width, gold.height) {
        return Err(format!(
            "prediction is {}x{}, gold is {}x{}",
            pred.width, pred.height, gold.width, gold.height
        ));
    }
    let n = gold.width * gold.height;
    if pred.uv.len() != 2 * n || gold.uv.len() != 2 * n {
        return Err(format!(
            "a {}x{} flow holds {} values (prediction {}, gold {})",
            gold.width,
            gold.height,
            2 * n,
            pred.uv.len(),
            gold.uv.len()
        ));
    }
    if let Some(m) = mask {
        if m.len() != n {
            return Err(format!(
                "the mask has {} pixels, the flow {}x{} has {n}",
                m.len(),
                gold.width,
                gold.height
            ));
        }
    }
    let mut out = Epe {
        masked: mask.map(|_| EpeStat::default()),
        ..Default::default()
    };
    for i in 0..n {
        let (gu, gv) = (gold.uv[2 * i], gold.uv[2 * i + 1]);
        if is_unknown(gu, gv) {
            out.unknown += 1;
            continue;
        }
        let (pu, pv) = (pred.uv[2 * i], pred.uv[2 * i + 1]);
        if !pu.is_finite() || !pv.is_finite() {
            return Err(format!(
                "the prediction is not finite at x {}, y {}: ({pu}, {pv})",
                i % gold.width,
                i / gold.width
            ));
        }
        let (du, dv) = ((pu - gu) as f64, (pv - gv) as f64);
        let e = (du * du + dv * dv).sqrt();
        out.all.push(e);
        if let (Some(m), Some(stat)) = (mask, out.masked.as_mut()) {
            if m[i] {
                stat.push(e);
            }
        }
        let mag = ((gu as f64).powi(2) + (gv as f64).powi(2)).sqrt();
        if mag < BIN_EDGES[0] as f64 {
            out.small.push(e);
        } else if mag <= BIN_EDGES[1] as f64 {
            out.medium.push(e);
        } else {
            out.large.push(e);
        }
    }
    Ok(out)
}

/// Reads a mask image: one bool a pixel, true where any channel is non-zero; returns
/// `(width, height, mask)`.
pub fn read_mask(path: &Path) -> Result<(usize, usize, Vec<bool>)> {
    let img = crate::media::read_image(path)?;
    let mask = img.data.chunks_exact(3).map(|p| p != [0, 0, 0]).collect();
    Ok((img.width as usize, img.height as usize, mask))
}

/// One file's EPE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileEpe {
    /// The gold file name (a folder's entry) or path (a single file).
    pub name: String,
    #[serde(flatten)]
    pub epe: Epe,
}

/// EPE per file and pooled over the files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowReport {
    pub pooled: Epe,
    pub files: Vec<FileEpe>,
    /// Predicted `.flo` files with no gold file of the same name (folders only).
    pub unmatched: Vec<String>,
}

/// The `.flo` files of a folder, sorted by name.
fn flo_files(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir.display().to_string(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".flo") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn file_epe(name: String, pred: &Path, gold: &Path, mask: Option<&Path>) -> Result<FileEpe> {
    let (p, g) = (read_flo(pred)?, read_flo(gold)?);
    let mask = match mask {
        None => None,
        Some(path) => {
            let (w, h, m) = read_mask(path)?;
            if (w, h) != (g.width, g.height) {
                return Err(Error::bad_input(
                    path,
                    format!(
                        "the mask is {w}x{h}, the gold flow {} is {}x{}",
                        gold.display(),
                        g.width,
                        g.height
                    ),
                ));
            }
            Some(m)
        }
    };
    let epe = epe(&p, &g, mask.as_deref())
        .map_err(|e| Error::bad_input(pred, format!("against {}: {e}", gold.display())))?;
    Ok(FileEpe { name, epe })
}

/// Scores predicted flow against gold. `pred` and `gold` are both `.flo` files, or both
/// folders whose `.flo` files are matched by name (every gold file needs a prediction; extra
/// predictions are listed in `unmatched`). `mask`, when given, is an image for a single file,
/// or for folders a folder holding `NAME.png` for each gold `NAME.flo`.
pub fn evaluate_paths(pred: &Path, gold: &Path, mask: Option<&Path>) -> Result<FlowReport> {
    for p in [Some(pred), Some(gold), mask].into_iter().flatten() {
        if !p.exists() {
            return Err(Error::NotFound {
                path: p.to_path_buf(),
            });
        }
    }
    if !gold.is_dir() {
        if pred.is_dir() || mask.is_some_and(Path::is_dir) {
            return Err(Error::bad_input(
                pred,
                format!(
                    "gold {} is one file: pass one .flo prediction and one mask image",
                    gold.display()
                ),
            ));
        }
        let f = file_epe(gold.display().to_string(), pred, gold, mask)?;
        return Ok(FlowReport {
            pooled: f.epe,
            files: vec![f],
            unmatched: Vec::new(),
        });
    }
    if !pred.is_dir() || mask.is_some_and(|m| !m.is_dir()) {
        return Err(Error::bad_input(
            pred,
            format!(
                "gold {} is a folder: pass a folder of .flo predictions (and a folder of masks)",
                gold.display()
            ),
        ));
    }
    let gold_names = flo_files(gold)?;
    if gold_names.is_empty() {
        return Err(Error::bad_input(gold, "the folder holds no .flo file"));
    }
    let pred_names = flo_files(pred)?;
    let missing: Vec<&str> = gold_names
        .iter()
        .filter(|n| !pred_names.contains(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Error::bad_input(
            pred,
            format!(
                "no prediction for {} of the {} gold files (first: {})",
                missing.len(),
                gold_names.len(),
                missing[..missing.len().min(5)].join(", ")
            ),
        ));
    }
    let mut report = FlowReport {
        pooled: Epe::default(),
        files: Vec::with_capacity(gold_names.len()),
        unmatched: pred_names
            .into_iter()
            .filter(|n| !gold_names.contains(n))
            .collect(),
    };
    for name in gold_names {
        let mask_file = mask.map(|m| m.join(format!("{}.png", name.trim_end_matches(".flo"))));
        let f = file_epe(
            name.clone(),
            &pred.join(&name),
            &gold.join(&name),
            mask_file.as_deref(),
        )?;
        if report.files.is_empty() {
            report.pooled = f.epe;
        } else {
            report.pooled.merge(&f.epe);
        }
        report.files.push(f);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_bad_headers() {
        let p = Path::new("x.flo");
        let mut bytes = encode_flo(&Flow::zeros(2, 1));
        assert_eq!(&bytes[..4], b"PIEH");
        assert!(decode_flo(&bytes, p).is_ok());
        bytes.push(0);
        let e = decode_flo(&bytes, p).unwrap_err().to_string();
        assert!(e.contains("1 bytes after"), "{e}");
        bytes[0] = b'X';
        let e = decode_flo(&bytes, p).unwrap_err().to_string();
        assert!(e.starts_with("x.flo: not a .flo file"), "{e}");
        let mut neg = encode_flo(&Flow::zeros(2, 1));
        neg[4..8].copy_from_slice(&(-2i32).to_le_bytes());
        assert!(decode_flo(&neg, p)
            .unwrap_err()
            .to_string()
            .contains("-2x1"));
        assert!(decode_flo(b"PIEH", p).is_err());
    }

    #[test]
    fn unknown_gold_is_left_out_and_bins_split_on_edges() {
        let gold = Flow {
            width: 4,
            height: 1,
            uv: vec![1e9, 0.0, 1.0, 0.0, 3.0, 0.0, 0.0, f32::NAN],
        };
        let pred = Flow::zeros(4, 1);
        let r = epe(&pred, &gold, None).unwrap();
        assert_eq!(r.unknown, 2);
        // Magnitude exactly 1 and exactly 3 are both medium.
        assert_eq!((r.small.pixels, r.medium.pixels, r.large.pixels), (0, 2, 0));
        assert_eq!(r.medium.epe, Some(2.0));
        assert_eq!(r.small.epe, None);
        assert!(r.masked.is_none());
        assert!(epe(&Flow::zeros(2, 2), &gold, None).is_err());
    }
}
