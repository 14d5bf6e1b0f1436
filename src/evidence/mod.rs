//! Evidence about a face, ready for the FACS layer and the agent: from one image's appearance
//! ([`appearance`]); motion evidence from flow joins it here.

pub mod appearance;

pub use appearance::{AppearanceModels, FaceAppearance};
