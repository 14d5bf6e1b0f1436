//! Which AUs moved: one learned detector per AU over the shape of the onset -> apex motion.
//!
//! Unmixing ([`super::au::unmix`]) says how much each AU's pattern explains, but patterns
//! that overlap share the motion between them: the lid tightener (AU7) and the cheek raiser
//! (AU6) both lift the lower lid, the dimpler (AU14) and the lip corner puller (AU12) both
//! pull the mouth corners. A detector sees the whole motion at once and learns from examples
//! which shapes carry the AU.
//!
//! Each detector is a logistic regression over the same features:
//! - the region displacements (`[dx, dy]` per region of [`Detectors::regions`], IOD) divided
//!   by their overall length, so a micro-expression and a macro-expression of the same AUs
//!   look alike, and the mirror image is a different input (sides stay apart);
//! - the log of that length.
//!
//! Features are standardised with the training set's mean and spread. Training is plain
//! gradient descent on the L2-regularised log loss, from zero, with a fixed step count, so it
//! is deterministic. Each example also counts mirrored (left and right swapped), which
//! doubles the data and keeps the detectors symmetric.

use serde::{Deserialize, Serialize};

use super::au::MIDLINE;

/// Region displacements `(name, [dx, dy])`, IOD, as [`super::pair::displacements_iod`].
pub type Motion = Vec<(String, [f32; 2])>;

/// A training example: a motion and the AUs present in it.
pub type Labelled = (Motion, Vec<u8>);

/// One AU's detector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    pub au: u8,
    pub weights: Vec<f32>,
    pub bias: f32,
}

/// Every detector, with the feature layout they share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detectors {
    /// Region names, in feature order (two features each).
    pub regions: Vec<String>,
    /// Standardisation: `(feature - mean) / scale`.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub detectors: Vec<Detector>,
}

/// Smallest motion length the features divide by, IOD.
const MIN_LENGTH_IOD: f32 = 1e-4;

/// The raw (unstandardised) features of one motion over `regions`.
pub fn features(regions: &[String], displacements: &[(String, [f32; 2])]) -> Vec<f32> {
    let mut v = vec![0.0f32; 2 * regions.len()];
    for (name, d) in displacements {
        if let Some(k) = regions.iter().position(|r| r == name) {
            if d[0].is_finite() && d[1].is_finite() {
                v[2 * k] = d[0];
                v[2 * k + 1] = d[1];
            }
        }
    }
    let length = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(MIN_LENGTH_IOD);
    for x in &mut v {
        *x /= length;
    }
    v.push(length.ln());
    v
}

/// The same motion seen in a mirror: `r_` and `l_` regions swapped, x negated.
pub fn mirrored(displacements: &[(String, [f32; 2])]) -> Vec<(String, [f32; 2])> {
    displacements
        .iter()
        .map(|(name, d)| {
            let swapped = if let Some(rest) = name.strip_prefix("r_") {
                format!("l_{rest}")
            } else if let Some(rest) = name.strip_prefix("l_") {
                format!("r_{rest}")
            } else {
                debug_assert!(MIDLINE.contains(&name.as_str()), "{name}");
                name.clone()
            };
            (swapped, [-d[0], d[1]])
        })
        .collect()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl Detectors {
    /// The probability of each detected AU, `(au, p)` in detector order.
    pub fn probabilities(&self, displacements: &[(String, [f32; 2])]) -> Vec<(u8, f32)> {
        let x = self.standardised(&features(&self.regions, displacements));
        self.detectors
            .iter()
            .map(|d| (d.au, sigmoid(dot(&d.weights, &x) + d.bias)))
            .collect()
    }

    fn standardised(&self, raw: &[f32]) -> Vec<f32> {
        raw.iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(v, (m, s))| (v - m) / s)
            .collect()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How the detectors are trained.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrainOptions {
    /// L2 weight on the weights (not the bias), per example.
    pub l2: f32,
    pub steps: usize,
    pub learning_rate: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 0.001,
            steps: 3000,
            learning_rate: 0.5,
        }
    }
}

/// Trains one detector per AU in `aus` on `examples`: `(displacements, AUs present)`.
pub fn train(
    regions: &[String],
    examples: &[Labelled],
    aus: &[u8],
    options: &TrainOptions,
) -> Detectors {
    let raw: Vec<(Vec<f32>, &Vec<u8>)> = examples
        .iter()
        .flat_map(|(d, present)| {
            [
                (features(regions, d), present),
                (features(regions, &mirrored(d)), present),
            ]
        })
        .collect();
    let dim = 2 * regions.len() + 1;
    let n = raw.len().max(1) as f32;
    let mut mean = vec![0.0f32; dim];
    for (x, _) in &raw {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += v / n;
        }
    }
    let mut scale = vec![0.0f32; dim];
    for (x, _) in &raw {
        for ((s, v), m) in scale.iter_mut().zip(x).zip(&mean) {
            *s += (v - m).powi(2) / n;
        }
    }
    for s in &mut scale {
        *s = s.sqrt().max(1e-6);
    }
    let mut out = Detectors {
        regions: regions.to_vec(),
        mean,
        scale,
        detectors: Vec::new(),
    };
    let xs: Vec<Vec<f32>> = raw.iter().map(|(x, _)| out.standardised(x)).collect();
    for &au in aus {
        let ys: Vec<f32> = raw
            .iter()
            .map(|(_, p)| if p.contains(&au) { 1.0 } else { 0.0 })
            .collect();
        let (weights, bias) = logistic(&xs, &ys, options);
        out.detectors.push(Detector { au, weights, bias });
    }
    out
}

/// L2-regularised logistic regression by full-batch gradient descent.
fn logistic(xs: &[Vec<f32>], ys: &[f32], options: &TrainOptions) -> (Vec<f32>, f32) {
    let dim = xs.first().map_or(0, Vec::len);
    let n = xs.len().max(1) as f32;
    let (mut w, mut b) = (vec![0.0f32; dim], 0.0f32);
    for _ in 0..options.steps {
        let mut gw = vec![0.0f32; dim];
        let mut gb = 0.0f32;
        for (x, y) in xs.iter().zip(ys) {
            let e = sigmoid(dot(&w, x) + b) - y;
            for (g, v) in gw.iter_mut().zip(x) {
                *g += e * v / n;
            }
            gb += e / n;
        }
        for (wi, g) in w.iter_mut().zip(&gw) {
            *wi -= options.learning_rate * (g + options.l2 * *wi);
        }
        b -= options.learning_rate * gb;
    }
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<String> {
        ["r_mouth_corner", "l_mouth_corner", "chin"]
            .map(String::from)
            .to_vec()
    }

    fn motion(r: [f32; 2], l: [f32; 2], chin: [f32; 2]) -> Vec<(String, [f32; 2])> {
        regions().into_iter().zip([r, l, chin]).collect()
    }

    #[test]
    fn features_are_scale_free_and_mirroring_swaps_sides() {
        let a = features(
            &regions(),
            &motion([-0.01, -0.01], [0.01, -0.01], [0.0, 0.0]),
        );
        let b = features(
            &regions(),
            &motion([-0.05, -0.05], [0.05, -0.05], [0.0, 0.0]),
        );
        for (x, y) in a.iter().zip(&b).take(6) {
            assert!((x - y).abs() < 1e-6);
        }
        assert!((b[6] - a[6] - 5.0f32.ln()).abs() < 1e-5);
        let m = mirrored(&motion([-0.02, 0.01], [0.0, 0.0], [0.003, 0.004]));
        assert_eq!(m[0], ("l_mouth_corner".to_string(), [0.02, 0.01]));
        assert_eq!(m[1], ("r_mouth_corner".to_string(), [-0.0, 0.0]));
        assert_eq!(m[2], ("chin".to_string(), [-0.003, 0.004]));
    }

    #[test]
    fn a_detector_learns_which_shape_carries_its_au() {
        // AU12 pulls both corners up and out; AU17 pushes the chin up. Each example has one.
        let mut examples = Vec::new();
        for k in 0..20 {
            let s = 0.005 + 0.002 * k as f32;
            examples.push((motion([-s, -s], [s, -s], [0.0, 0.0]), vec![12]));
            examples.push((motion([0.0, 0.0], [0.0, 0.0], [0.0, -s]), vec![17]));
        }
        let d = train(&regions(), &examples, &[12, 17], &TrainOptions::default());
        let smile = d.probabilities(&motion([-0.02, -0.02], [0.02, -0.02], [0.0, 0.001]));
        let chin = d.probabilities(&motion([0.001, 0.0], [0.0, 0.0], [0.0, -0.03]));
        assert!(smile[0].1 > 0.9 && smile[1].1 < 0.1, "{smile:?}");
        assert!(chin[0].1 < 0.1 && chin[1].1 > 0.9, "{chin:?}");
    }
}
