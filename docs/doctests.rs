//! The Rust examples of gtudp's prose, compiled and run as doc tests: the
//! workspace `README.md`, every page of `docs/`, and the READMEs the
//! published crates carry. `cargo test --workspace` runs them (alone:
//! `cargo test -p gtudp-docs --doc`), so an example that stops compiling or
//! stops doing what it says fails the tests.
//!
//! Each file is the documentation of one item that exists only when
//! rustdoc collects doc tests (`cfg(doctest)`), so this crate is empty in
//! every other build. It is never published (`publish = false`), so its
//! `include_str!` of files outside its folder never reaches a package.
//!
//! In those files, a ```` ```rust ```` block (or an unmarked one) is a test;
//! anything else is marked with its language (```` ```sh ````,
//! ```` ```python ````, ```` ```text ````).
#![warn(missing_docs)]

/// The workspace README.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;

/// The pages of `docs/`.
#[cfg(doctest)]
pub mod pages {
    /// `docs/protocol.md`.
    #[doc = include_str!("protocol.md")]
    pub struct Protocol;

    /// `docs/design.md`.
    #[doc = include_str!("design.md")]
    pub struct Design;

    /// `docs/tuning.md`.
    #[doc = include_str!("tuning.md")]
    pub struct Tuning;

    /// `docs/address-validation.md`.
    #[doc = include_str!("address-validation.md")]
    pub struct AddressValidation;

    /// `docs/address-changes.md`.
    #[doc = include_str!("address-changes.md")]
    pub struct AddressChanges;

    /// `docs/large-messages.md`.
    #[doc = include_str!("large-messages.md")]
    pub struct LargeMessagesPage;

    /// `docs/rust.md`.
    #[doc = include_str!("rust.md")]
    pub struct Rust;

    /// `docs/python.md`.
    #[doc = include_str!("python.md")]
    pub struct Python;

    /// `docs/migrating.md`.
    #[doc = include_str!("migrating.md")]
    pub struct Migrating;

    /// `docs/changes.md`.
    #[doc = include_str!("changes.md")]
    pub struct Changes;

    /// `docs/testing.md`.
    #[doc = include_str!("testing.md")]
    pub struct Testing;

    /// `docs/performance.md`.
    #[doc = include_str!("performance.md")]
    pub struct Performance;

    /// `docs/releasing.md`.
    #[doc = include_str!("releasing.md")]
    pub struct Releasing;
}

/// The READMEs of the published crates (their front pages on crates.io).
#[cfg(doctest)]
pub mod crate_readmes {
    /// `gtudp-proto/README.md`.
    #[doc = include_str!("../gtudp-proto/README.md")]
    pub struct Proto;

    /// `gtudp-io/README.md`.
    #[doc = include_str!("../gtudp-io/README.md")]
    pub struct Io;

    /// `gtudp-tokio/README.md`.
    #[doc = include_str!("../gtudp-tokio/README.md")]
    pub struct Tokio;

    /// `gtudp-mio/README.md`.
    #[doc = include_str!("../gtudp-mio/README.md")]
    pub struct Mio;
}
