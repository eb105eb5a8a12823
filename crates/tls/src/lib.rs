//! trunkgate-tls: the TLS policy engine of trunkgate, on OpenSSL (SPEC T1–T11, O2).
//!
//! What it does:
//! - **Profiles as data** ([`Profile`], `profiles/*.toml`): versions, IANA cipher-suite names
//!   (mapped to OpenSSL names in [`suites`]), groups, client-certificate policy, peer identity
//!   rules, revocation policy, expiry warning. Parsing is strict and errors name file, line, fix.
//! - **Trust** ([`TrustAnchors`], [`TrustTable`], `trust/*.toml`): roots from PEM/DER files and
//!   directories, or from the system bundle filtered by a table of names + subject hashes;
//!   missing roots are reported. Per-peer anchors (T4 trustpoints).
//! - **Server and client contexts** ([`TlsServer`], [`TlsClient`]) built from a profile:
//!   full chain presented (T5), SNI selection, CertificateRequest only when the profile says
//!   (never on byoc-cloud, T3), verification of chain, name (RFC 5922/6125, no IP identities
//!   where forbidden), dates, CRL (file or HTTP distribution point, cached), EKU.
//! - **Typed failures** ([`FailureReason`]) with an explanation and a fix for each.
//! - **Observation** ([`ConnectionInfo`]): version, IANA cipher, group, SNI, peer chain,
//!   verification result, CertificateRequest sent/received, alerts; a per-connection debug log
//!   of messages, states and errors; an NSS key log ([`ObserveOptions`]).
//! - **Reload** without dropping connections ([`TlsServer::reload`], [`TlsClient::reload`]).
//!
//! A listener and an outbound trunk connection, as the edge wires them:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use trunkgate_tls::*;
//!
//! let profile = Profile::load(Path::new("profiles/byoc-cloud.toml"))?;
//! let me = Identity::from_files(Path::new("edge.pem"), Path::new("edge.key"), &[])?;
//! let server = TlsServer::new(&ServerConfig::new(profile.clone(), me))?;
//!
//! let table = TrustTable::load(Path::new("trust/byoc-cloud-digicert.toml"))?;
//! let (roots, report) = table.select_from_bundle(Path::new(trust::SYSTEM_BUNDLE))?;
//! assert!(report.missing.is_empty(), "{:?}", report.missing);
//! let client = TlsClient::new(&ClientConfig::new(profile.clone(), roots))?;
//! profile.check_target("lb01.voice.use1.pure.cloud")?; // at configuration time (T7)
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:5061").await?;
//! let (tcp, peer) = listener.accept().await?;
//! match server.accept(tcp, Some(peer.ip()), &peer.to_string()).await {
//!     Ok((_tls, info)) => println!("{} {:?} {:?}", peer, info.version, info.cipher),
//!     Err(e) => println!("{}: {} (fix: {})", e.reason.code(), e.reason.explanation(), e.reason.fix()),
//! }
//!
//! let tcp = tokio::net::TcpStream::connect("lb01.voice.use1.pure.cloud:5061").await?;
//! let (_tls, info) = client.connect("lb01.voice.use1.pure.cloud", &PeerOptions::default(), tcp).await?;
//! assert_eq!(info.verification, Verification::Verified);
//! # Ok(()) }
//! ```
//!
//! What it does not do: open sockets or listen (the edge does; this crate takes a stream),
//! resolve names (RFC 3263 is the edge's), fetch missing intermediates (never, T5), speak OCSP,
//! issue certificates (`trunkgate-pki` does). The only `unsafe` code is in the small `ffi`
//! module (`SSL_CTX_set_msg_callback`, `SSL_CTX_set_info_callback`).

pub mod certs;
mod client;
mod context;
pub mod crl;
pub mod error;
mod ffi;
pub mod names;
pub mod observe;
pub mod profile;
mod server;
pub mod suites;
pub mod trust;
mod verify;

pub use certs::Identity;
pub use client::{ClientConfig, PeerOptions, TlsClient};
pub use context::{failure_after_handshake, ObserveOptions};
pub use error::{FailureReason, HandshakeError, TlsError};
pub use observe::{Alert, CertSummary, ConnectionInfo, Role, Verification};
pub use profile::{ClientCertPolicy, PeerName, Profile, RevocationMode, Version};
pub use server::{ServerConfig, TlsServer};
pub use trust::{TrustAnchors, TrustReport, TrustTable};
