//! Optical-flow tools for people: colour maps of flow fields ([`visualize`]).
//!
//! The flow type itself and its `.flo` I/O live in [`crate::eval::flow`].

pub mod visualize;

pub use visualize::{
    colour_wheel_legend, draw_text, flow_colour, flow_to_rgb, magnitude_label, max_magnitude,
    text_width,
};
