//! actfer: agentic facial-expression reasoning.
//!
//! The library holds every capability; the `actfer` binary and the agent's tools are thin
//! layers over it. Modules follow the data flow: [`media`] decodes inputs, [`models`] finds
//! the weights.

pub mod error;
pub mod face;
pub mod media;
pub mod models;
pub mod progress;

pub use error::{Error, Result};
