//! FACS knowledge shared by every stage: the Action Unit catalogue ([`au`]) and the emotion
//! label set with its FACS prototypes ([`emotion`]), both const tables, the one source of
//! truth that prompts, rewards and evaluation read; their joined view for docs and prompts
//! ([`catalogue`]); AU evidence ([`evidence`]) from one image's appearance ([`appearance`]);
//! and AU -> emotion inference by prototype matching ([`inference`]).

pub mod appearance;
pub mod au;
pub mod catalogue;
pub mod emotion;
pub mod evidence;
pub mod inference;

pub use au::{AuCode, AuInfo, AuSet, AUS};
pub use emotion::{Emotion, MeClass};
pub use evidence::AuEvidence;
