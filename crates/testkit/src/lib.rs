//! trunkgate-testkit: harnesses for real peers on loopback, shared by the tests of
//! `trunkgate-check`, `trunkgate-resolve` and the edge. Dev-only (`publish = false`).
//!
//! What it gives:
//! - [`free_tcp_port`], [`free_udp_port`], [`wait_tcp`] (bounded wait for a listener);
//! - [`ChildGuard`]: a child process run under `timeout(1)` that is stopped by PID on drop
//!   (SIGTERM through `kill(1)`, then SIGKILL after a bounded wait);
//! - [`SServer`]: `openssl s_server` with a given certificate, key, chain and options;
//! - [`Kamailio`]: Kamailio 5.6 with the tls module, a generated config, a TLS listener and a
//!   UDP listener, answering OPTIONS with 200 (or relaying UDP to a TLS destination);
//! - [`Dnsmasq`]: a DNS server on 127.0.0.1 with NAPTR, SRV and A/AAAA records;
//! - [`HttpFiles`]: serve a few files (CRLs) over HTTP from a thread.
//!
//! Every child runs under a lifetime limit and every wait is bounded, so nothing hangs: a
//! harness that cannot start returns a [`KitError`] that says which package to install.
//! Missing programs are errors, never silent skips (CI installs them from `.ci/packages.txt`).

mod child;
mod dns;
mod http;
mod kamailio;
mod net;
mod sserver;

pub use child::{ChildGuard, KitError};
pub use dns::{DnsRecords, Dnsmasq};
pub use http::HttpFiles;
pub use kamailio::{Kamailio, KamailioOptions};
pub use net::{free_tcp_port, free_udp_port, wait_tcp};
pub use sserver::{SServer, SServerOptions};

/// Lifetime given to child processes: they end on their own after this many seconds even if a
/// test is killed before its guards run.
pub const CHILD_LIFETIME_S: u64 = 300;
