//! gtUDP's sans-IO core.
#![warn(missing_docs)]

pub mod wire;
