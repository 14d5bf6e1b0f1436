//! Landmark smoothing over time without lag at expression onsets: the One Euro filter
//! (Casiez, Roussel and Vogel, CHI 2012). Each coordinate is low-pass filtered with a cutoff
//! that rises with its speed: still points are steadied, moving points follow at once.

use serde::{Deserialize, Serialize};

/// Filter settings. Frequencies in Hz; `beta` in 1/pixel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneEuroConfig {
    /// Cutoff at rest: lower removes more jitter.
    pub min_cutoff: f32,
    /// How fast the cutoff rises with speed: higher follows fast motion with less lag.
    pub beta: f32,
    /// Cutoff used to smooth the speed estimate.
    pub d_cutoff: f32,
}

impl Default for OneEuroConfig {
    /// Tuned for landmarks in pixels at 24-200 fps: sub-pixel jitter is damped, a 1-px
    /// micro-expression onset passes within a frame or two.
    fn default() -> Self {
        OneEuroConfig {
            min_cutoff: 3.0,
            beta: 0.5,
            d_cutoff: 1.0,
        }
    }
}

/// Smooths a fixed-length vector of coordinates (e.g. 478 x 3 landmark values) over time.
#[derive(Debug, Clone)]
pub struct OneEuro {
    config: OneEuroConfig,
    value: Vec<f32>,
    speed: Vec<f32>,
    initialised: bool,
}

fn alpha(cutoff: f32, dt: f32) -> f32 {
    let tau = 1.0 / (2.0 * std::f32::consts::PI * cutoff);
    1.0 / (1.0 + tau / dt)
}

impl OneEuro {
    pub fn new(config: OneEuroConfig) -> Self {
        OneEuro {
            config,
            value: Vec::new(),
            speed: Vec::new(),
            initialised: false,
        }
    }

    /// Forgets the past (after a re-detection or a cut).
    pub fn reset(&mut self) {
        self.initialised = false;
    }

    /// Filters one sample taken `dt` seconds after the previous one; returns the smoothed values.
    pub fn filter(&mut self, sample: &[f32], dt: f32) -> &[f32] {
        if !self.initialised || self.value.len() != sample.len() || dt <= 0.0 {
            self.value = sample.to_vec();
            self.speed = vec![0.0; sample.len()];
            self.initialised = true;
            return &self.value;
        }
        let a_d = alpha(self.config.d_cutoff, dt);
        for ((v, s), &x) in self.value.iter_mut().zip(self.speed.iter_mut()).zip(sample) {
            *s += a_d * ((x - *v) / dt - *s);
            let cutoff = self.config.min_cutoff + self.config.beta * s.abs();
            *v += alpha(cutoff, dt) * (x - *v);
        }
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_damped_and_steps_are_followed() {
        let mut f = OneEuro::new(OneEuroConfig::default());
        let dt = 1.0 / 30.0;
        // Alternating +-0.5 px jitter around 100 is reduced a lot.
        let mut last = 0.0;
        for i in 0..60 {
            let x = 100.0 + if i % 2 == 0 { 0.5 } else { -0.5 };
            last = f.filter(&[x], dt)[0];
        }
        assert!((last - 100.0).abs() < 0.3, "{last}");
        // A 10 px jump is mostly followed within 3 frames.
        let mut y = 0.0;
        for _ in 0..3 {
            y = f.filter(&[110.0], dt)[0];
        }
        assert!(y > 107.0, "{y}");
    }
}
