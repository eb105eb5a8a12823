//! # trunkgate-edge: the secure SIP trunking edge
//!
//! What it does: a back-to-back user agent between TLS SIP trunks outside (carriers, cloud
//! contact centres: SPEC T1–T9) and plain SIP over UDP/TCP inside (a PBX, a call server).
//! Calls from a trunk are matched to a trunk by TGRP, DNIS or host (S2) and sent to the inside
//! target; calls from the inside leave over the trunk chosen by `tgrp` or number prefix, with
//! the Request-URI of S1, over a TLS connection verified for the peer's host name, failing over
//! across the trunk's peers (S3). Peers are pinged with OPTIONS and skipped while down.
//!
//! Shape: [`core`] is sans-IO (bytes and `Instant`s in, sends and deadlines out) and holds all
//! the SIP logic on top of `trunkgate-sip` transactions; [`runtime`] drives it with tokio,
//! `trunkgate-tls` handshakes and connection limits; [`config`] is the strict TOML
//! configuration; [`routing`] is routing as data; [`demo`] runs two edges and a call through
//! them.
//!
//! Media is anchored per call through `trunkgate-media` (SRTP with SDES keys on trunk legs,
//! plain RTP inside; SPEC M1, M2); trunk peers given as bare domains are resolved per RFC 3263
//! through `trunkgate-resolve`.
//!
//! What it does not do (yet): serve an admin API listing live connections (SPEC O1), or reload
//! its configuration without a restart.

pub mod config;
pub mod core;
pub mod demo;
pub mod routing;
pub mod runtime;
pub mod tlsconf;

pub use config::Config;
pub use runtime::{Edge, EdgeEvent, Options};
