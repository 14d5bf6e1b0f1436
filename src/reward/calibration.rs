//! Emotion-aware EMA calibration of the zoom utility, with state that persists across batches.
//!
//! Per gold emotion class e, `Ubar_e <- beta * Ubar_e + (1 - beta) * U(q)` for every group q of
//! class e whose utility U(q) is defined; a class never updated has `Ubar_e = 0`.
//!
//! Within a batch (one `actfer reward` run, one `--serve` request, one call of the Python
//! reward function) every group's calibrated utility uses the state as it was at the start of
//! the batch, so a group's score does not depend on its place in the batch; the updates are
//! then applied in the order the groups first appear. The state is a small JSON file:
//!
//! ```json
//! {"schema": "actfer.reward-state/1", "batches": 3,
//!  "classes": {"happiness": {"ubar": 0.0271, "updates": 3}}}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::facs::Emotion;

pub const STATE_SCHEMA: &str = "actfer.reward-state/1";

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassState {
    pub ubar: f64,
    pub updates: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationState {
    pub schema: String,
    /// Batches folded in so far.
    pub batches: u64,
    pub classes: BTreeMap<Emotion, ClassState>,
}

impl Default for CalibrationState {
    fn default() -> Self {
        CalibrationState {
            schema: STATE_SCHEMA.into(),
            batches: 0,
            classes: BTreeMap::new(),
        }
    }
}

impl CalibrationState {
    /// `Ubar_e` (0 for a class never updated).
    pub fn ubar(&self, e: Emotion) -> f64 {
        self.classes.get(&e).map_or(0.0, |c| c.ubar)
    }

    /// One EMA update of class `e` with a defined utility `u`.
    pub fn update(&mut self, e: Emotion, u: f64, beta: f64) {
        let c = self.classes.entry(e).or_default();
        c.ubar = beta * c.ubar + (1.0 - beta) * u;
        c.updates += 1;
    }

    /// Folds one batch in: `utilities` are (gold class, U(q)) of the groups whose U is defined,
    /// in group order.
    pub fn apply_batch(&mut self, utilities: &[(Emotion, f64)], beta: f64) {
        for &(e, u) in utilities {
            self.update(e, u, beta);
        }
        self.batches += 1;
    }

    /// Loads a state file; a missing file is a fresh state (the first batch of a run).
    pub fn load_or_default(path: &Path) -> Result<CalibrationState> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let state: CalibrationState = serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_input(
                path,
                format!("reward state: {e}; delete the file to start afresh"),
            )
        })?;
        if state.schema != STATE_SCHEMA {
            return Err(Error::bad_input(
                path,
                format!(
                    "reward state schema {:?}, expected {STATE_SCHEMA:?}",
                    state.schema
                ),
            ));
        }
        Ok(state)
    }

    /// Writes the state atomically (a temporary file beside it, then a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&tmp, text + "\n")
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_over_three_batches_and_resume() {
        // beta = 0.5. Batch 1: happiness U = 0.4 -> Ubar = 0.5*0 + 0.5*0.4 = 0.2.
        // Batch 2: happiness U = -0.2 -> 0.5*0.2 + 0.5*(-0.2) = 0.0; fear U = 1.0 -> 0.5.
        // Batch 3: happiness U = 0.6, then 0.2 -> 0.3, then 0.25.
        let mut s = CalibrationState::default();
        s.apply_batch(&[(Emotion::Happiness, 0.4)], 0.5);
        assert_eq!(s.ubar(Emotion::Happiness), 0.2);
        s.apply_batch(&[(Emotion::Happiness, -0.2), (Emotion::Fear, 1.0)], 0.5);
        assert_eq!(
            (s.ubar(Emotion::Happiness), s.ubar(Emotion::Fear)),
            (0.0, 0.5)
        );
        // Save after batch 2, resume, and run batch 3 on both copies: same result.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        s.save(&path).unwrap();
        let mut resumed = CalibrationState::load_or_default(&path).unwrap();
        assert_eq!(resumed, s);
        for st in [&mut s, &mut resumed] {
            st.apply_batch(&[(Emotion::Happiness, 0.6), (Emotion::Happiness, 0.2)], 0.5);
        }
        assert_eq!(resumed, s);
        assert_eq!(s.ubar(Emotion::Happiness), 0.25);
        assert_eq!(s.classes[&Emotion::Happiness].updates, 4);
        assert_eq!(s.batches, 3);
        assert_eq!(s.ubar(Emotion::Sadness), 0.0);
    }

    #[test]
    fn missing_state_is_fresh_and_a_broken_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(
            CalibrationState::load_or_default(&path).unwrap(),
            CalibrationState::default()
        );
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(
            CalibrationState::load_or_default(&path)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
