//! Media for trunkgate: SDP rewriting with SDES keys and an RTP↔SRTP relay (SPEC M1, M2).
//!
//! What it does:
//! - parses and rewrites SDP per call leg ([`sdp`]): the edge's address in `c=`/`o=`, its ports in
//!   `m=`, `RTP/SAVP` with fresh `a=crypto` keys (RFC 4568) on SRTP legs, `RTP/AVP` without keys on
//!   plain legs; codecs pass through;
//! - negotiates SDES ([`crypto`], [`session`]): suite and key chosen from offers and answers,
//!   lifetimes honoured, MKI refused with a typed error, no acceptable crypto → 488;
//! - relays media ([`relay`] sans-IO, [`runtime`] on tokio): RTP↔SRTP and RTCP↔SRTCP with
//!   `webrtc-srtp`, symmetric RTP latching, per-leg counters, auth-failure and replay drops,
//!   last-packet instants for the media inactivity timeout; ports from a [`ports::PortPool`].
//!
//! What it does not: SIP (the edge maps [`MediaError::sip_status`] to its responses and sends BYE
//! when [`RelayHandle::idle_for`] passes its timeout), DTLS-SRTP, ICE, MKI, transcoding, more than
//! one relayed stream per call (other streams are disabled with port 0), the suites
//! AES_CM_128_HMAC_SHA1_32, AES_256_CM_HMAC_SHA1_80 and AEAD_AES_256_GCM (parsed, but `webrtc-srtp`
//! 0.15 does not implement them: a policy naming them is refused at configuration time).
//!
//! Keys never appear in `Debug` output ([`SrtpKey`] prints `***`) and the crate never logs SDP.
//!
//! One call, as the edge drives it (see `docs/media.md`):
//!
//! ```no_run
//! # async fn call(invite_body: &[u8], answer_body: &[u8]) -> Result<(), trunkgate_media::MediaError> {
//! use std::time::{Duration, Instant};
//! use trunkgate_media::*;
//! let media = MediaManager::new(MediaConfig::default())?; // once per process
//! let mut call = media.new_session(
//!     LegConfig { media_ip: "10.0.0.1".parse().unwrap(), security: LegSecurity::Plain },
//!     LegConfig { media_ip: "192.0.2.1".parse().unwrap(), security: LegSecurity::Srtp(SrtpPolicy::default()) },
//! )?;
//! call.offer_from_leg(LegId::A, invite_body)?; // 488 etc.: e.sip_status()
//! let _body_for_b = call.offer_for_leg(LegId::B)?;
//! call.answer_from_leg(LegId::B, answer_body)?; // no acceptable crypto: 488
//! let _body_for_a = call.answer_for_leg(LegId::A)?;
//! let relay = call.start_relay()?;
//! if relay.idle_for(Instant::now()) > Duration::from_secs(60) { /* BYE */ }
//! let [_a, _b] = relay.stop().await;
//! # Ok(()) }
//! ```

pub mod crypto;
pub mod error;
pub mod ports;
pub mod relay;
pub mod runtime;
pub mod sdp;
pub mod session;

pub use crypto::{CryptoAttr, CryptoSuite, SrtpKey};
pub use error::{CryptoError, LegId, MediaError, SdpError};
pub use ports::{PortPair, PortPool};
pub use relay::{DropReason, LatchMode, LegParams, LegStats, Outcome, PacketKind, RelayCore, SrtpParams};
pub use runtime::RelayHandle;
pub use sdp::{Direction, Sdp};
pub use session::{LegConfig, LegSecurity, MediaConfig, MediaManager, MediaSession, SrtpPolicy};
