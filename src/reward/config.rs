//! Reward configuration: term weights, calibration constants, the advantage's epsilon.
//! Every default lives here (serde defaults); a TOML file overrides any subset:
//!
//! ```toml
//! emotion_level = "basic"   # or "me3": r_emotion compares positive/negative/surprise
//! [weights]
//! format = 0.5
//! region = 0.5
//! au = 1.0
//! consistency = 0.5
//! emotion = 1.0
//! utility = 0.5
//! words = 0.5   # 0 scores without the word list
//! [calibration]
//! alpha = 0.5   # Uhat = alpha * U + (1 - alpha) * Ubar
//! beta = 0.9    # Ubar <- beta * Ubar + (1 - beta) * U
//! [advantage]
//! eps = 1e-6    # A = (R - mean) / (std + eps)
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub format: f64,
    pub region: f64,
    pub au: f64,
    pub consistency: f64,
    pub emotion: f64,
    pub utility: f64,
    pub words: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            format: 0.5,
            region: 0.5,
            au: 1.0,
            consistency: 0.5,
            emotion: 1.0,
            utility: 0.5,
            words: 0.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Calibration {
    /// Weight of the group's own utility in the calibrated utility.
    pub alpha: f64,
    /// EMA decay of the per-emotion utility.
    pub beta: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            alpha: 0.5,
            beta: 0.9,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Advantage {
    pub eps: f64,
}

impl Default for Advantage {
    fn default() -> Self {
        Advantage { eps: 1e-6 }
    }
}

/// Which labels `r_emotion` compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmotionLevel {
    /// The eight labels (seven basic emotions and neutral).
    #[default]
    Basic,
    /// The micro-expression classes positive / negative / surprise (neutral only matches neutral).
    Me3,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    pub emotion_level: EmotionLevel,
    pub weights: Weights,
    pub calibration: Calibration,
    pub advantage: Advantage,
}

impl RewardConfig {
    /// Parses TOML text; `path` names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<RewardConfig> {
        let cfg: RewardConfig = toml::from_str(text)
            .map_err(|e| Error::bad_input(path, format!("reward config: {}", e.message())))?;
        cfg.validate()
            .map_err(|reason| Error::bad_input(path, reason))?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<RewardConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| read_error(path, e))?;
        Self::from_toml(&text, path)
    }

    /// Checks ranges: alpha and beta in [0, 1], eps > 0, weights finite.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let w = self.weights;
        if ![
            w.format,
            w.region,
            w.au,
            w.consistency,
            w.emotion,
            w.utility,
            w.words,
        ]
        .iter()
        .all(|x| x.is_finite())
        {
            return Err("reward config: weights must be finite numbers".into());
        }
        let c = self.calibration;
        if !(0.0..=1.0).contains(&c.alpha) || !(0.0..=1.0).contains(&c.beta) {
            return Err(format!(
                "reward config: alpha ({}) and beta ({}) must lie in [0, 1]",
                c.alpha, c.beta
            ));
        }
        if !(self.advantage.eps > 0.0 && self.advantage.eps.is_finite()) {
            return Err(format!(
                "reward config: eps ({}) must be a positive number",
                self.advantage.eps
            ));
        }
        Ok(())
    }
}

pub(crate) fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        Error::io(format!("reading {}", path.display()), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_toml_keeps_the_other_defaults() {
        let cfg = RewardConfig::from_toml(
            "[weights]\nau = 2.0\n[calibration]\nbeta = 0.5\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(cfg.weights.au, 2.0);
        assert_eq!(cfg.weights.format, Weights::default().format);
        assert_eq!(
            cfg.calibration,
            Calibration {
                alpha: 0.5,
                beta: 0.5
            }
        );
        assert_eq!(
            RewardConfig::from_toml("", Path::new("c.toml")).unwrap(),
            RewardConfig::default()
        );
    }

    #[test]
    fn typos_and_bad_ranges_are_refused() {
        let e = RewardConfig::from_toml("[weights]\nemotions = 1.0\n", Path::new("c.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("emotions"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(
            RewardConfig::from_toml("[calibration]\nalpha = 1.5\n", Path::new("c.toml")).is_err()
        );
        assert!(RewardConfig::from_toml("[advantage]\neps = 0.0\n", Path::new("c.toml")).is_err());
    }
}
