//! FACS knowledge shared by every stage: the Action Unit catalogue ([`au`]) and the emotion
//! label set with its FACS prototypes ([`emotion`]). Both are const tables, the one source of
//! truth that prompts, rewards and evaluation read.

pub mod au;
pub mod emotion;

pub use au::{AuCode, AuInfo, AuSet, AUS};
pub use emotion::{Emotion, MeClass};
