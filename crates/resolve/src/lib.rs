//! trunkgate-resolve: RFC 3263 resolution of SIP-over-TLS targets (SPEC S3, S4), shared by
//! `trunkgate check` and the edge's outbound failover.
//!
//! What it does: turns a [`SipTarget`] (`sips:example.net`, `sip:host;transport=tls`,
//! `host:port`, a bare domain) into the list of [`Target`]s to try, in failover order:
//! NAPTR (service `SIPS+D2T`, flag `s`, by order then preference) → SRV (`_sips._tcp`, then the
//! legacy `_sip._tls`; by priority, then weighted at random within a priority, RFC 2782) →
//! A/AAAA. An explicit port or an IP address skips NAPTR and SRV (RFC 3263 §4.2). Each target
//! carries the name its certificate must present: the SRV domain, never the `_sips._tcp` label
//! and not the SRV target host (RFC 5922 §4, SPEC S4).
//!
//! What it does not do: connect (callers try targets in order and fail over), cache beyond
//! hickory's own cache, or resolve UDP/TCP transports.
//!
//! The nameserver is configurable ([`ResolverOptions::nameserver`]) so tests can point it at a
//! DNS server on 127.0.0.1.

mod order;
mod target;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use hickory_resolver::error::{ResolveError as DnsError, ResolveErrorKind};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioAsyncResolver;

pub use order::order_srv;
pub use target::{SipTarget, SIPS_PORT};

/// Why resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The target text is not usable.
    #[error("target {target:?} is not usable: {why}; fix: write sips:HOST[:PORT], sip:HOST;transport=tls, HOST:PORT or a domain")]
    BadTarget {
        /// What was given.
        target: String,
        /// What is wrong.
        why: String,
    },
    /// DNS has no usable record for the name.
    #[error("no address for {name}: {detail}; fix: check the DNS records (NAPTR/SRV/A/AAAA) of {name}, or give --connect IP:PORT")]
    NotFound {
        /// The name.
        name: String,
        /// What was tried.
        detail: String,
    },
    /// The DNS query failed (timeout, refused, bad answer).
    #[error(
        "DNS lookup of {name} failed: {detail}; fix: check the resolver configuration and that the DNS server answers"
    )]
    Dns {
        /// The name.
        name: String,
        /// The resolver's words.
        detail: String,
    },
    /// The resolver could not be set up.
    #[error("cannot set up the DNS resolver: {detail}; fix: check /etc/resolv.conf or give a nameserver")]
    Setup {
        /// Why.
        detail: String,
    },
}

/// How a target was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// NAPTR → SRV → A/AAAA.
    Naptr,
    /// SRV → A/AAAA.
    Srv,
    /// A/AAAA of the host itself (or an IP address).
    Direct,
}

/// One address to try, in failover order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// The name the server certificate must carry (RFC 5922, SPEC S4): the SIP domain for
    /// NAPTR/SRV results, the host itself otherwise; an IP address text when the target is one.
    pub cert_name: String,
    /// The host that was resolved to `addr` (SRV target or the host itself).
    pub host_name: String,
    /// Address and port.
    pub addr: SocketAddr,
    /// Always "tls" here.
    pub transport: &'static str,
    /// SRV priority (0 for direct targets).
    pub priority: u16,
    /// SRV weight (0 for direct targets).
    pub weight: u16,
    /// The SRV owner name (`_sips._tcp.example.net`) when SRV was used.
    pub srv_name: Option<String>,
    /// How it was found.
    pub source: Source,
}

/// Resolver settings.
#[derive(Debug, Clone)]
pub struct ResolverOptions {
    /// Ask this server (UDP, then TCP) instead of the system's (`/etc/resolv.conf`).
    pub nameserver: Option<SocketAddr>,
    /// Per-query timeout.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions { nameserver: None, timeout: Duration::from_secs(3), attempts: 2 }
    }
}

/// An RFC 3263 resolver for TLS targets.
#[derive(Debug, Clone)]
pub struct Resolver {
    inner: TokioAsyncResolver,
}

fn dns_err(name: &str, e: &DnsError) -> Option<ResolveError> {
    match e.kind() {
        ResolveErrorKind::NoRecordsFound { .. } => None,
        _ => Some(ResolveError::Dns { name: name.to_string(), detail: e.to_string() }),
    }
}

impl Resolver {
    /// A resolver with these options.
    pub fn new(opts: &ResolverOptions) -> Result<Resolver, ResolveError> {
        let mut o = ResolverOpts::default();
        o.timeout = opts.timeout;
        o.attempts = opts.attempts;
        o.use_hosts_file = opts.nameserver.is_none();
        let cfg = match opts.nameserver {
            Some(ns) => {
                let mut c = ResolverConfig::new();
                c.add_name_server(NameServerConfig::new(ns, Protocol::Udp));
                c.add_name_server(NameServerConfig::new(ns, Protocol::Tcp));
                c
            }
            None => {
                let (c, sys) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| ResolveError::Setup { detail: e.to_string() })?;
                o.ndots = sys.ndots;
                c
            }
        };
        Ok(Resolver { inner: TokioAsyncResolver::tokio(cfg, o) })
    }

    /// Resolve a target into addresses in failover order (RFC 3263 §4 for TLS).
    pub async fn resolve(&self, target: &SipTarget) -> Result<Vec<Target>, ResolveError> {
        if let Some(ip) = target.ip {
            return Ok(vec![direct(target, &target.host, ip, target.port.unwrap_or(SIPS_PORT))]);
        }
        if !target.uses_srv() {
            let port = target.port.unwrap_or(SIPS_PORT);
            let ips = self.addresses(&target.host).await?;
            if ips.is_empty() {
                return Err(ResolveError::NotFound { name: target.host.clone(), detail: "no A/AAAA record".into() });
            }
            return Ok(ips.into_iter().map(|ip| direct(target, &target.host, ip, port)).collect());
        }
        let domain = target.host.as_str();
        // NAPTR: SIPS over TCP (= TLS), flag "s" → SRV owner names.
        let mut srv_names: Vec<(String, Source)> = Vec::new();
        match self.inner.lookup(format!("{domain}."), RecordType::NAPTR).await {
            Ok(l) => {
                let mut recs: Vec<(u16, u16, String)> = l
                    .iter()
                    .filter_map(|r| match r {
                        RData::NAPTR(n)
                            if n.flags().eq_ignore_ascii_case(b"s")
                                && n.services().eq_ignore_ascii_case(b"SIPS+D2T") =>
                        {
                            Some((n.order(), n.preference(), n.replacement().to_ascii()))
                        }
                        _ => None,
                    })
                    .collect();
                recs.sort();
                srv_names.extend(recs.into_iter().map(|(_, _, n)| (n, Source::Naptr)));
            }
            Err(e) => {
                if let Some(err) = dns_err(domain, &e) {
                    return Err(err);
                }
            }
        }
        if srv_names.is_empty() {
            srv_names.push((format!("_sips._tcp.{domain}."), Source::Srv));
            srv_names.push((format!("_sip._tls.{domain}."), Source::Srv));
        }
        let mut out = Vec::new();
        for (name, source) in &srv_names {
            let found = self.srv(name, domain, *source).await?;
            if !found.is_empty() {
                out = found;
                break;
            }
        }
        if out.is_empty() {
            let ips = self.addresses(domain).await?;
            out = ips.into_iter().map(|ip| direct(target, domain, ip, SIPS_PORT)).collect();
        }
        if out.is_empty() {
            return Err(ResolveError::NotFound {
                name: domain.to_string(),
                detail: "no NAPTR SIPS+D2T, no _sips._tcp or _sip._tls SRV, no A/AAAA record".into(),
            });
        }
        Ok(out)
    }

    /// Resolve from synchronous code (builds a small runtime; do not call inside one).
    pub fn resolve_blocking(&self, target: &SipTarget) -> Result<Vec<Target>, ResolveError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ResolveError::Setup { detail: e.to_string() })?;
        rt.block_on(self.resolve(target))
    }

    async fn srv(&self, name: &str, domain: &str, source: Source) -> Result<Vec<Target>, ResolveError> {
        let recs = match self.inner.srv_lookup(name).await {
            Ok(l) => l
                .iter()
                .filter(|s| s.target().to_ascii() != ".")
                .map(|s| (s.priority(), s.weight(), s.port(), s.target().to_ascii().trim_end_matches('.').to_string()))
                .collect::<Vec<_>>(),
            Err(e) => {
                return match dns_err(name, &e) {
                    Some(err) => Err(err),
                    None => Ok(Vec::new()),
                }
            }
        };
        let ordered = order_srv(recs, &mut order::random_u32);
        let mut out = Vec::new();
        for (priority, weight, port, host) in ordered {
            for ip in self.addresses(&host).await? {
                out.push(Target {
                    cert_name: domain.to_string(),
                    host_name: host.clone(),
                    addr: SocketAddr::new(ip, port),
                    transport: "tls",
                    priority,
                    weight,
                    srv_name: Some(name.trim_end_matches('.').to_string()),
                    source,
                });
            }
        }
        Ok(out)
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        match self.inner.lookup_ip(format!("{host}.")).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) => match dns_err(host, &e) {
                Some(err) => Err(err),
                None => Ok(Vec::new()),
            },
        }
    }
}

fn direct(target: &SipTarget, host: &str, ip: IpAddr, port: u16) -> Target {
    Target {
        cert_name: target.host.clone(),
        host_name: host.to_string(),
        addr: SocketAddr::new(ip, port),
        transport: "tls",
        priority: 0,
        weight: 0,
        srv_name: None,
        source: Source::Direct,
    }
}
