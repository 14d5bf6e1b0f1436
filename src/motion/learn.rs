//! Fitting the AU motion patterns ([`super::au`]) to measured motion with known AUs.
//!
//! Each example is one expression: the region displacements measured onset -> apex (IOD)
//! and the AUs that made it with their intensities per side. The model is the one the
//! unmixing inverts: displacement = sum over AUs and sides of intensity x pattern, the
//! pattern mirrored on the left and shared half-and-half on midline regions. It is linear in
//! the patterns' `(out, down)` values, so they are the ridge-regularised least-squares
//! solution over all examples. Parts smaller than `min_part_iod` are dropped, so each
//! pattern lists the regions its AU really moves.

use serde::Serialize;

use super::au::{Part, Pattern, MIDLINE, PARTS};
use crate::error::{Error, Result};

/// One expression with known AUs.
#[derive(Debug, Clone)]
pub struct Example {
    /// Region displacements, IOD (full region names, as [`super::pair::displacements_iod`]).
    pub displacements: Vec<(String, [f32; 2])>,
    /// `(au, right, left)` intensities.
    pub aus: Vec<(u8, f32, f32)>,
}

/// The fitted patterns and how well they explain the examples.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    pub patterns: Vec<Pattern>,
    pub samples: usize,
    /// Root-mean-square residual over every region component of every example, IOD.
    pub residual_rms_iod: f32,
    /// The same with no pattern at all (the displacements' own RMS), for scale.
    pub signal_rms_iod: f32,
}

/// `(part index, side)`: side -1 right, +1 left, 0 midline.
fn locate(region: &str) -> Option<(usize, i8)> {
    let (part, side) = if let Some(p) = region.strip_prefix("r_") {
        (p, -1)
    } else if let Some(p) = region.strip_prefix("l_") {
        (p, 1)
    } else if MIDLINE.contains(&region) {
        (region, 0)
    } else {
        return None;
    };
    PARTS.iter().position(|&q| q == part).map(|i| (i, side))
}

/// The design row of one region component: `(unknown index, coefficient)` pairs. Unknown
/// `(a, part, c)` is `(a * PARTS.len() + part) * 2 + c`, `c` 0 for out, 1 for down.
fn row(aus: &[(usize, f32, f32)], part: usize, side: i8, component: usize) -> Vec<(usize, f64)> {
    aus.iter()
        .filter_map(|&(a, right, left)| {
            let base = (a * PARTS.len() + part) * 2;
            // The image-x sign of "out": the subject's right is the image's left.
            let coef = match (side, component) {
                (-1, 0) => -right,
                (-1, _) => right,
                (1, 0) => left,
                (1, _) => left,
                (_, 0) => 0.5 * (left - right),
                _ => 0.5 * (left + right),
            };
            (coef != 0.0).then_some((base + component, coef as f64))
        })
        .collect()
}

/// Fits one pattern per AU that appears in `examples`.
pub fn fit(examples: &[Example], ridge: f64, min_part_iod: f32) -> Result<Fit> {
    let mut aus: Vec<u8> = examples
        .iter()
        .flat_map(|e| e.aus.iter().map(|a| a.0))
        .collect();
    aus.sort_unstable();
    aus.dedup();
    if aus.is_empty() {
        return Err(Error::Internal("no example has an AU to fit".into()));
    }
    let n = aus.len() * PARTS.len() * 2;
    let mut ata = vec![0.0f64; n * n];
    let mut atb = vec![0.0f64; n];
    let (mut signal, mut count) = (0.0f64, 0usize);
    let indexed = |e: &Example| -> Vec<(usize, f32, f32)> {
        e.aus
            .iter()
            .map(|&(au, r, l)| (aus.binary_search(&au).expect("listed"), r, l))
            .collect()
    };
    for e in examples {
        let ex_aus = indexed(e);
        for (region, d) in &e.displacements {
            let Some((part, side)) = locate(region) else {
                continue;
            };
            for (c, &value) in d.iter().enumerate() {
                let r = row(&ex_aus, part, side, c);
                for &(i, a) in &r {
                    atb[i] += a * value as f64;
                    for &(j, b) in &r {
                        ata[i * n + j] += a * b;
                    }
                }
                signal += (value as f64).powi(2);
                count += 1;
            }
        }
    }
    for i in 0..n {
        ata[i * n + i] += ridge;
    }
    let x = crate::synth::field::solve(&mut ata, &mut atb, n, 1)
        .ok_or_else(|| Error::Internal("the pattern fit is singular".into()))?;
    let value = |a: usize, part: usize, c: usize| x[(a * PARTS.len() + part) * 2 + c] as f32;
    let patterns: Vec<Pattern> = aus
        .iter()
        .enumerate()
        .map(|(a, &au)| Pattern {
            au,
            parts: PARTS
                .iter()
                .enumerate()
                .filter_map(|(p, name)| {
                    let (out, down) = (value(a, p, 0), value(a, p, 1));
                    (out.hypot(down) >= min_part_iod).then(|| Part {
                        region: name.to_string(),
                        out: (out * 1e4).round() / 1e4,
                        down: (down * 1e4).round() / 1e4,
                    })
                })
                .collect(),
        })
        .collect();
    // Residual with the kept (rounded, pruned) patterns.
    let mut residual = 0.0f64;
    for e in examples {
        let ex_aus = indexed(e);
        for (region, d) in &e.displacements {
            let Some((part, side)) = locate(region) else {
                continue;
            };
            for (c, &v) in d.iter().enumerate() {
                let predicted: f64 = row(&ex_aus, part, side, c)
                    .iter()
                    .map(|&(i, coef)| {
                        let (a, rest) = (i / (PARTS.len() * 2), i % (PARTS.len() * 2));
                        let (p, comp) = (rest / 2, rest % 2);
                        let kept = patterns[a]
                            .parts
                            .iter()
                            .find(|q| q.region == PARTS[p])
                            .map_or(0.0, |q| if comp == 0 { q.out } else { q.down });
                        coef * kept as f64
                    })
                    .sum();
                residual += (v as f64 - predicted).powi(2);
            }
        }
    }
    let rms = |s: f64| (s / count.max(1) as f64).sqrt() as f32;
    Ok(Fit {
        patterns,
        samples: examples.len(),
        residual_rms_iod: rms(residual),
        signal_rms_iod: rms(signal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Examples rendered from known patterns are fitted back to them.
    #[test]
    fn known_patterns_are_recovered() {
        let truth = [
            (
                12u8,
                [("mouth_corner", 0.08f32, -0.07f32), ("cheek", 0.0, -0.03)],
            ),
            (4u8, [("inner_brow", -0.05, 0.09), ("glabella", 0.0, 0.05)]),
        ];
        let render = |i12: (f32, f32), i4: f32| -> Vec<(String, [f32; 2])> {
            let mut out = Vec::new();
            for (name, (part, side)) in [
                "r_mouth_corner",
                "l_mouth_corner",
                "r_cheek",
                "l_cheek",
                "r_inner_brow",
                "l_inner_brow",
                "glabella",
            ]
            .iter()
            .map(|n| (n.to_string(), locate(n).unwrap()))
            {
                let mut d = [0.0f32; 2];
                for (au, parts) in &truth {
                    let (r, l) = if *au == 12 { i12 } else { (i4, i4) };
                    for (pname, o, dn) in parts {
                        if PARTS[part] != *pname {
                            continue;
                        }
                        match side {
                            -1 => {
                                d[0] -= r * o;
                                d[1] += r * dn;
                            }
                            1 => {
                                d[0] += l * o;
                                d[1] += l * dn;
                            }
                            _ => {
                                d[0] += 0.5 * (l - r) * o;
                                d[1] += 0.5 * (l + r) * dn;
                            }
                        }
                    }
                }
                out.push((name, d));
            }
            out
        };
        let examples: Vec<Example> = [
            ((0.3, 0.3), 0.0),
            ((0.5, 0.0), 0.2),
            ((0.0, 0.0), 0.4),
            ((0.2, 0.2), 0.3),
        ]
        .iter()
        .map(|&(i12, i4)| Example {
            displacements: render(i12, i4),
            aus: vec![(12, i12.0, i12.1), (4, i4, i4)],
        })
        .collect();
        let fit = fit(&examples, 1e-9, 0.005).unwrap();
        let au12 = fit.patterns.iter().find(|p| p.au == 12).unwrap();
        let corner = au12
            .parts
            .iter()
            .find(|p| p.region == "mouth_corner")
            .unwrap();
        assert!(
            (corner.out - 0.08).abs() < 1e-3 && (corner.down + 0.07).abs() < 1e-3,
            "{corner:?}"
        );
        let au4 = fit.patterns.iter().find(|p| p.au == 4).unwrap();
        assert_eq!(au4.parts.len(), 2, "{au4:?}");
        assert!(fit.residual_rms_iod < 1e-3);
    }
}
