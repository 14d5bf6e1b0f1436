//! The temporal profile of an expression: onset -> apex -> offset, a raised-cosine rise and
//! fall.
//!
//! For frames (or seconds) `onset <= apex <= offset` and `t`:
//! - `t <= onset` or `t >= offset`: 0
//! - `onset < t <= apex`: `(1 - cos(pi (t - onset) / (apex - onset))) / 2`, rising 0 -> 1
//! - `apex < t < offset`: `(1 + cos(pi (t - apex) / (offset - apex))) / 2`, falling 1 -> 0
//!
//! Both halves have zero slope at onset, apex and offset, so motion starts and stops
//! smoothly and peaks at the apex. With `onset == apex` the intensity is 1 at the apex.

use serde::Serialize;

use crate::error::{Error, Result};

/// An onset -> apex -> offset profile, in frames (fractional frames allowed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    pub onset: f32,
    pub apex: f32,
    pub offset: f32,
}

impl Profile {
    /// Checks `onset <= apex <= offset`, `onset < offset`, all finite.
    pub fn new(onset: f32, apex: f32, offset: f32) -> Result<Profile> {
        let finite = onset.is_finite() && apex.is_finite() && offset.is_finite();
        if !finite || onset > apex || apex > offset || onset >= offset {
            return Err(Error::Internal(format!(
                "profile onset {onset}, apex {apex}, offset {offset}: \
                 need finite onset <= apex <= offset with onset < offset"
            )));
        }
        Ok(Profile {
            onset,
            apex,
            offset,
        })
    }

    /// The intensity in [0, 1] at time `t`.
    pub fn intensity(&self, t: f32) -> f32 {
        use std::f32::consts::PI;
        if t <= self.onset || t >= self.offset {
            if t == self.apex {
                return 1.0;
            }
            return 0.0;
        }
        if t <= self.apex {
            0.5 * (1.0 - (PI * (t - self.onset) / (self.apex - self.onset)).cos())
        } else {
            0.5 * (1.0 + (PI * (t - self.apex) / (self.offset - self.apex)).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_at_ends_one_at_apex_and_monotone_between() {
        let p = Profile::new(10.0, 16.0, 30.0).unwrap();
        assert_eq!(p.intensity(10.0), 0.0);
        assert_eq!(p.intensity(30.0), 0.0);
        assert_eq!(p.intensity(5.0), 0.0);
        assert_eq!(p.intensity(31.0), 0.0);
        assert!((p.intensity(16.0) - 1.0).abs() < 1e-6);
        assert!((p.intensity(13.0) - 0.5).abs() < 1e-6);
        assert!((p.intensity(23.0) - 0.5).abs() < 1e-6);
        let mut last = 0.0;
        for k in 0..=60 {
            let v = p.intensity(10.0 + k as f32 * 0.1);
            assert!(v >= last - 1e-6 && (0.0..=1.0).contains(&v));
            last = v;
        }
        let step = Profile::new(0.0, 0.0, 4.0).unwrap();
        assert_eq!(step.intensity(0.0), 1.0);
        assert!(Profile::new(5.0, 3.0, 8.0).is_err());
        assert!(Profile::new(2.0, 2.0, 2.0).is_err());
    }
}
