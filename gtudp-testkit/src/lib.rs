//! Test scaffolding shared by gtudp's adapters, written once: a counting
//! global allocator ([`alloc`]), a lossy, duplicating, reordering loopback
//! relay ([`relay`]), and the echo examples' payloads, tally, result line
//! and command-line helpers ([`echo`], [`cli`]).
//!
//! A dev-dependency only; not published.
#![warn(missing_docs)]

pub mod alloc;
pub mod cli;
pub mod echo;
pub mod examples;
pub mod relay;
