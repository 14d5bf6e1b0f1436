//! Optical flow: the estimator interface ([`FlowMethod`]), head-motion removal ([`head`]), and
//! colour maps of flow fields for people ([`visualize`]).
//!
//! The flow type itself and its `.flo` I/O live in [`crate::eval::flow`].

pub mod classical;
pub mod compare;
pub mod head;
pub mod meflownet;
pub mod method;
pub mod train;
pub mod visualize;

pub use classical::{Classical, DisPreset};
pub use method::FlowMethod;

pub use visualize::{
    colour_map_with_scale, colour_wheel_legend, draw_text, flow_colour, flow_to_rgb,
    magnitude_label, max_magnitude, text_width,
};
