//! The server's certificate chain as sent, examined check by check: completeness and order
//! (T5), trust by the trust table with the root's name and subject hash (T6), key sizes and
//! signature algorithms, names (T7, never an IP), wildcards, the SRV-domain rule (S4), dates
//! (T8), revocation by the CRL of each distribution point (T9) and EKU serverAuth (T11).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::pkey::Id;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509ExtendedKeyUsage, X509Ref, X509StoreContext, X509VerifyResult, X509};
use trunkgate_tls::crl::{self, CrlCheck, CrlStore};
use trunkgate_tls::names;
use trunkgate_tls::suites::KeyExchange;
use trunkgate_tls::{PeerName, Profile, RevocationMode, TrustTable, Version};

use crate::report::{Finding, Status};

/// What the chain is checked against.
#[derive(Debug)]
pub struct ChainContext<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// The trust table (names and subject hashes, T6).
    pub table: &'a TrustTable,
    /// Roots selected from the system bundle by the table.
    pub table_roots: &'a [X509],
    /// Roots added with `--ca` (and where they came from).
    pub extra_roots: &'a [X509],
    /// Description of the `--ca` files.
    pub extra_origin: &'a str,
    /// The name the certificate must carry (target host or SRV domain), or the IP of an IP target.
    pub cert_name: &'a str,
    /// The SRV target host when the address came from SRV (S4).
    pub srv_host: Option<&'a str>,
}

/// Fetch the chain the server sends, without judging it (verification off: this is a probe).
/// The profile's versions and suites are tried first, then anything.
pub fn fetch_chain(
    addr: SocketAddr,
    sni: Option<&str>,
    profile: &Profile,
    timeout: Duration,
) -> Result<(Vec<X509>, String), String> {
    let mut last = String::new();
    for strict in [true, false] {
        let attempt = || -> Result<(Vec<X509>, String), String> {
            let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
            b.set_verify(SslVerifyMode::NONE);
            if strict {
                let v = |v: Version| match v {
                    Version::Tls10 => SslVersion::TLS1,
                    Version::Tls11 => SslVersion::TLS1_1,
                    Version::Tls12 => SslVersion::TLS1_2,
                    Version::Tls13 => SslVersion::TLS1_3,
                };
                b.set_min_proto_version(Some(v(profile.min_version))).map_err(|e| e.to_string())?;
                b.set_max_proto_version(Some(v(profile.max_version))).map_err(|e| e.to_string())?;
                let list = profile.openssl_cipher_list();
                if !list.is_empty() {
                    b.set_cipher_list(&list).map_err(|e| e.to_string())?;
                }
            } else {
                b.set_min_proto_version(Some(SslVersion::TLS1)).map_err(|e| e.to_string())?;
                b.set_cipher_list("ALL:@SECLEVEL=0").map_err(|e| e.to_string())?;
            }
            let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
            let _ = tcp.set_read_timeout(Some(timeout));
            let _ = tcp.set_write_timeout(Some(timeout));
            let mut cfg = b.build().configure().map_err(|e| e.to_string())?;
            cfg.set_verify_hostname(false);
            cfg.set_use_server_name_indication(sni.is_some());
            let s = cfg.connect(sni.unwrap_or("invalid"), tcp).map_err(|e| e.to_string())?;
            let chain: Vec<X509> =
                s.ssl().peer_cert_chain().map(|c| c.iter().map(|x| x.to_owned()).collect()).unwrap_or_default();
            let how = format!(
                "{} {}",
                s.ssl().version_str(),
                s.ssl().current_cipher().map(|c| c.standard_name().unwrap_or(c.name())).unwrap_or("?")
            );
            Ok((chain, how))
        };
        match attempt() {
            Ok(r) if !r.0.is_empty() => return Ok(r),
            Ok(_) => last = "the server sent no certificate".into(),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn subject(c: &X509Ref) -> String {
    trunkgate_tls::certs::subject(c)
}

fn issued(issuer: &X509Ref, cert: &X509Ref) -> bool {
    issuer.issued(cert) == X509VerifyResult::OK && issuer.public_key().is_ok_and(|k| cert.verify(&k).unwrap_or(false))
}

fn self_signed(c: &X509Ref) -> bool {
    issued(c, c)
}

/// Build the path from the leaf to a trusted root (dates ignored here: they have their own
/// check). `Ok(path)` leaf first, or `Err(OpenSSL's reason)`.
fn build_path(chain: &[X509], roots: &[X509]) -> Result<Vec<X509>, String> {
    let leaf = chain.first().ok_or("no certificate")?;
    let mut sb = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    for r in roots {
        sb.add_cert(r.clone()).map_err(|e| e.to_string())?;
    }
    sb.set_flags(X509VerifyFlags::NO_CHECK_TIME).map_err(|e| e.to_string())?;
    let store = sb.build();
    let mut untrusted = Stack::new().map_err(|e| e.to_string())?;
    for c in chain.iter().skip(1) {
        untrusted.push(c.clone()).map_err(|e| e.to_string())?;
    }
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    let (ok, why, path) = ctx
        .init(&store, leaf, &untrusted, |c| {
            let ok = c.verify_cert()?;
            let path: Vec<X509> = c.chain().map(|s| s.iter().map(|x| x.to_owned()).collect()).unwrap_or_default();
            Ok((ok, c.error().error_string().to_string(), path))
        })
        .map_err(|e| e.to_string())?;
    if ok {
        Ok(path)
    } else {
        Err(why)
    }
}

/// Every chain check, in report order.
pub fn analyse(chain: &[X509], cx: &ChainContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(leaf) = chain.first() else {
        out.push(Finding::new(
            "chain.complete",
            Status::Fail,
            "NoCertificate",
            "the server sent no certificate",
            "configure the server certificate and its chain",
        ));
        return out;
    };
    let mut roots: Vec<X509> = cx.table_roots.to_vec();
    roots.extend(cx.extra_roots.iter().cloned());
    let subjects: Vec<String> = chain.iter().map(|c| subject(c)).collect();
    out.push(Finding::info(
        "chain.sent",
        "Chain",
        format!("{} certificate(s): {}", chain.len(), subjects.join(" <- ")),
    ));

    // ---- order and completeness (T5)
    let mut misplaced = None;
    for pair in chain.windows(2) {
        if let [a, b] = pair {
            if misplaced.is_none() && !issued(b, a) {
                misplaced = Some(format!("{} is followed by {}, which did not issue it", subject(a), subject(b)));
            }
        }
    }
    out.push(match misplaced {
        None => Finding::pass("chain.order", "InOrder", "each certificate is followed by its issuer"),
        Some(why) => Finding::new(
            "chain.order",
            Status::Fail,
            "OutOfOrder",
            format!("not sent leaf first, each followed by its issuer: {why}"),
            "configure the chain file as leaf, then its intermediates in order, without duplicates (SPEC T5)",
        ),
    });
    let last = chain.last().unwrap_or(leaf);
    let complete = if self_signed(last) {
        Finding::pass(
            "chain.complete",
            "Complete",
            "complete: the chain runs up to its root (sending the root is harmless)",
        )
    } else if roots.iter().any(|r| issued(r, last)) {
        Finding::pass("chain.complete", "Complete", format!("complete: {} is issued by a trusted root", subject(last)))
    } else {
        Finding::new("chain.complete", Status::Fail, "IncompleteChain", format!("incomplete: the issuer of {} ({}) was not sent and is not a trusted root", subject(last), trunkgate_tls::certs::name_to_string(last.issuer_name())), "configure the server to send its intermediate certificate(s) after the leaf; clients do not fetch missing ones (SPEC T5)")
    };
    out.push(complete);

    // ---- trust (T6)
    let path = build_path(chain, &roots);
    match &path {
        Ok(p) => {
            let root = p.last().unwrap_or(leaf);
            let hash = root.subject_name_hash();
            let f = match cx.table.entries.iter().find(|e| e.subject_hash == hash) {
                Some(e) => Finding::pass(
                    "chain.trust",
                    "TableRoot",
                    format!(
                        "trusted: root {} ({hash:08x}, {}) is in trust table {} (SPEC T6)",
                        e.names.first().map(String::as_str).unwrap_or("?"),
                        e.authority,
                        cx.table.name
                    ),
                ),
                None => Finding::pass(
                    "chain.trust",
                    "ExtraRoot",
                    format!(
                        "trusted: root {} ({hash:08x}) from {}; it is not in trust table {}",
                        subject(root),
                        cx.extra_origin,
                        cx.table.name
                    ),
                ),
            };
            out.push(f);
        }
        Err(why) => out.push(Finding::new(
            "chain.trust",
            Status::Fail,
            "Untrusted",
            format!(
                "not trusted: {why} (trust table {}{})",
                cx.table.name,
                if cx.extra_roots.is_empty() { String::new() } else { format!(" and {}", cx.extra_origin) }
            ),
            "use a certificate from a CA of the trust table, or add its root with --ca (SPEC T6)",
        )),
    }

    // ---- keys and signatures
    let rsa_only = cx.profile.max_version < Version::Tls13
        && cx.profile.suites.iter().all(|s| s.kx == KeyExchange::Rsa || s.iana.contains("_RSA_"));
    let mut key_problems = Vec::new();
    let mut keys = Vec::new();
    for c in chain {
        let Ok(k) = c.public_key() else { continue };
        let (kind, min) = match k.id() {
            Id::RSA => ("RSA", 2048),
            Id::EC => ("EC", 256),
            _ => ("other", 0),
        };
        keys.push(format!("{kind} {}", k.bits()));
        if k.bits() < min {
            key_problems.push(format!("{} has a {kind} key of {} bits (minimum {min})", subject(c), k.bits()));
        }
    }
    if rsa_only && leaf.public_key().is_ok_and(|k| k.id() != Id::RSA) {
        key_problems.push(format!(
            "the leaf key is not RSA, and every suite of profile {} authenticates with RSA",
            cx.profile.name
        ));
    }
    out.push(if key_problems.is_empty() {
        Finding::pass("chain.keys", "Ok", format!("key sizes: {}", keys.join(", ")))
    } else {
        Finding::new(
            "chain.keys",
            Status::Fail,
            "WeakKey",
            key_problems.join("; "),
            "reissue with an RSA key of 2048 bits or more (EC P-256 or more where the profile has ECDSA suites)",
        )
    });
    let mut algs = Vec::new();
    let mut weak_sig = Vec::new();
    for c in chain.iter().filter(|c| !self_signed(c)) {
        let alg = c.signature_algorithm().object().nid().long_name().unwrap_or("?").to_string();
        let lower = alg.to_ascii_lowercase();
        if lower.contains("sha1") || lower.contains("md5") {
            weak_sig.push(format!("{} signed with {alg}", subject(c)));
        }
        algs.push(alg);
    }
    out.push(if weak_sig.is_empty() {
        Finding::pass("chain.signatures", "Ok", format!("signatures: {}", algs.join(", ")))
    } else {
        Finding::new(
            "chain.signatures",
            Status::Fail,
            "WeakSignature",
            weak_sig.join("; "),
            "reissue the certificates with SHA-256 or stronger signatures",
        )
    });

    names_checks(leaf, cx, &mut out);
    dates_checks(chain, cx, &mut out);
    eku_check(leaf, cx, &mut out);
    revocation_checks(chain, path.as_ref().ok(), &roots, cx, &mut out);
    out
}

fn names_checks(leaf: &X509Ref, cx: &ChainContext<'_>, out: &mut Vec<Finding>) {
    let dns = names::presented_dns_names(leaf);
    let all = names::all_subject_names(leaf);
    let expected = cx.profile.check_target(cx.cert_name);
    let dns_names: Vec<&String> = dns.iter().filter(|n| n.parse::<std::net::IpAddr>().is_err()).collect();
    let f = match expected {
        Err(_) if cx.cert_name.parse::<std::net::IpAddr>().is_ok() => Finding::new("names.match", Status::Fail, "IpTarget", format!("the target {} is an IP address: profile {} does not accept an IP address as an identity (SPEC T7)", cx.cert_name, cx.profile.name), "give the host name as TARGET (the certificate's name) and the address with --connect IP:PORT"),
        Err(e) => Finding::new("names.match", Status::Fail, "BadName", e.to_string(), "give the host name from the SIP URI or SRV domain"),
        Ok(name) => match names::check_host(leaf, &name, cx.profile.wildcards) {
            Ok(()) => Finding::pass("names.match", "Match", format!("the certificate carries {} (names: {})", name.as_string(), dns.join(", "))),
            Err(_) if dns_names.is_empty() => Finding::new("names.match", Status::Fail, "IpOnly", format!("the certificate carries no host name, only [{}]: an IP address is not an identity on profile {} (SPEC T7)", all.join(", "), cx.profile.name), "reissue the certificate with the host name (SAN dNSName) clients connect to"),
            Err(presented) => Finding::new("names.match", Status::Fail, "NameMismatch", format!("the certificate is for [{}], not for {}", presented.join(", "), name.as_string()), "reissue the certificate with this host name in its SAN, or connect with a name it carries (SPEC T7)"),
        },
    };
    out.push(f);
    let wild: Vec<&String> = dns.iter().filter(|n| n.starts_with("*.")).collect();
    out.push(match (wild.is_empty(), cx.profile.wildcards) {
        (true, _) => Finding::pass("names.wildcard", "None", "no wildcard name"),
        (false, true) => Finding::info(
            "names.wildcard",
            "Allowed",
            format!("wildcard names {wild:?}, allowed by profile {}", cx.profile.name),
        ),
        (false, false) => Finding::new(
            "names.wildcard",
            Status::Warn,
            "Wildcard",
            format!("wildcard names {wild:?}: profile {} does not accept wildcards (SPEC T7)", cx.profile.name),
            "reissue the certificate with the exact host names",
        ),
    });
    let underscore: Vec<&String> = all.iter().filter(|n| n.contains('_')).collect();
    let f = match cx.srv_host {
        _ if !underscore.is_empty() => Finding::new("names.srv-domain", Status::Warn, "ServiceLabel", format!("names with underscores {underscore:?}: CAs do not issue _sips._tcp names; the domain is what is validated (SPEC S4)"), "put the SRV domain itself in the SAN"),
        None => Finding::info("names.srv-domain", "NotSrv", "address not found through SRV: the SRV-domain rule does not apply"),
        Some(host) => {
            let carries = |n: &str| names::check_host(leaf, &PeerName::Dns(n.to_string()), cx.profile.wildcards).is_ok();
            if carries(cx.cert_name) {
                Finding::pass("names.srv-domain", "Domain", format!("validated the SRV domain {} (not _sips._tcp.{0}, not the SRV target {host}) (SPEC S4)", cx.cert_name))
            } else if carries(host) {
                Finding::new("names.srv-domain", Status::Fail, "SrvTargetOnly", format!("the certificate names the SRV target {host} but not the SIP domain {} that is validated (SPEC S4, RFC 5922)", cx.cert_name), "add the SIP domain to the certificate's SAN")
            } else {
                Finding::new("names.srv-domain", Status::Fail, "NameMismatch", format!("the certificate carries neither the SIP domain {} nor the SRV target {host}", cx.cert_name), "add the SIP domain to the certificate's SAN (SPEC S4)")
            }
        }
    };
    out.push(f);
}

fn dates_checks(chain: &[X509], cx: &ChainContext<'_>, out: &mut Vec<Finding>) {
    let Ok(now) = Asn1Time::days_from_now(0) else { return };
    for (i, c) in chain.iter().enumerate() {
        let check = if i == 0 { "dates.leaf".to_string() } else { format!("dates.chain{i}") };
        let days_left = now.diff(c.not_after()).map(|d| d.days).unwrap_or(0);
        let started = now.diff(c.not_before()).map(|d| d.days < 0 || (d.days == 0 && d.secs <= 0)).unwrap_or(true);
        let expired = c.not_after() < now;
        let f = if expired {
            Finding::new(
                check,
                Status::Fail,
                "Expired",
                format!("{} expired on {}", subject(c), c.not_after()),
                "renew the certificate and install it with its chain (SPEC T8)",
            )
        } else if !started {
            Finding::new(
                check,
                Status::Fail,
                "NotYetValid",
                format!("{} is not valid before {}", subject(c), c.not_before()),
                "check the clocks, or install a certificate that is valid now (SPEC T8)",
            )
        } else if cx.profile.expiry_warning_days > 0
            && days_left < i32::try_from(cx.profile.expiry_warning_days).unwrap_or(30)
        {
            Finding::new(
                check,
                Status::Warn,
                "ExpiresSoon",
                format!("{} expires in {days_left} days ({})", subject(c), c.not_after()),
                "renew it now (SPEC T8)",
            )
        } else {
            Finding::pass(
                check,
                "Valid",
                format!("{} valid until {} ({days_left} days left)", subject(c), c.not_after()),
            )
        };
        out.push(f);
    }
}

fn eku_check(leaf: &X509Ref, cx: &ChainContext<'_>, out: &mut Vec<Finding>) {
    let f = match leaf.extended_key_usage() {
        Some(e) if e.contains(X509ExtendedKeyUsage::SSL_SERVER) => {
            let extra = if e.contains(X509ExtendedKeyUsage::SSL_CLIENT) { " (and clientAuth)" } else { "" };
            Finding::pass("eku.serverauth", "ServerAuth", format!("extended key usage has serverAuth{extra}"))
        }
        Some(_) if cx.profile.require_server_auth_eku => Finding::new(
            "eku.serverauth",
            Status::Fail,
            "WrongEku",
            "the extended key usage lacks serverAuth",
            "reissue the server certificate with EKU serverAuth (SPEC T11)",
        ),
        Some(_) => Finding::new(
            "eku.serverauth",
            Status::Warn,
            "WrongEku",
            "the extended key usage lacks serverAuth",
            "reissue the server certificate with EKU serverAuth (SPEC T11)",
        ),
        None => Finding::new(
            "eku.serverauth",
            Status::Warn,
            "NoEku",
            "no extended key usage extension (usable for anything)",
            "reissue the server certificate with EKU serverAuth (SPEC T11)",
        ),
    };
    out.push(f);
}

fn revocation_checks(
    chain: &[X509],
    path: Option<&Vec<X509>>,
    roots: &[X509],
    cx: &ChainContext<'_>,
    out: &mut Vec<Finding>,
) {
    let p = cx.profile;
    if p.revocation == RevocationMode::Off {
        out.push(Finding::info("revocation", "Off", format!("profile {} does not check CRLs", p.name)));
        return;
    }
    let store = CrlStore::new(Vec::new(), Duration::from_millis(p.crl_fetch_timeout_ms), p.max_crl_bytes);
    let hard = p.revocation == RevocationMode::Hard;
    let soft_or_hard = if hard { Status::Fail } else { Status::Warn };
    let certs: Vec<&X509> = match path {
        Some(path) => path.iter().collect(),
        None => chain.iter().collect(),
    };
    for (i, c) in certs.iter().enumerate() {
        if self_signed(c) {
            continue;
        }
        let issuer = certs.get(i + 1).copied().filter(|n| issued(n, c)).or_else(|| roots.iter().find(|r| issued(r, c)));
        let urls = crl::distribution_points(c);
        let who = subject(c);
        let f = match (issuer, urls.is_empty()) {
            (_, true) => Finding::new(
                "revocation",
                soft_or_hard,
                "NoCrlDp",
                format!("{who} names no http CRL distribution point"),
                "issue certificates with a CRL distribution point (SPEC T9, P4)",
            ),
            (None, false) => Finding::new(
                "revocation",
                soft_or_hard,
                "NoIssuer",
                format!("{who}: its CRL cannot be checked without its issuer"),
                "send the complete chain (SPEC T5)",
            ),
            (Some(iss), false) => match store.check(c, iss) {
                CrlCheck::Good => {
                    Finding::pass("revocation", "Good", format!("{who} not revoked (CRL from {})", urls.join(", ")))
                }
                CrlCheck::Revoked => Finding::new(
                    "revocation",
                    Status::Fail,
                    "Revoked",
                    format!(
                        "{who} (serial {}) is revoked by the CRL at {}",
                        trunkgate_tls::certs::serial_hex(c),
                        urls.join(", ")
                    ),
                    "install a newly issued certificate; the CA revoked this one (SPEC T9)",
                ),
                CrlCheck::Unavailable(why) => Finding::new(
                    "revocation",
                    soft_or_hard,
                    "CrlUnavailable",
                    format!("{who}: no current CRL from {} ({why})", urls.join(", ")),
                    "make the CRL distribution point reachable and its CRL current (SPEC T9)",
                ),
            },
        };
        out.push(f);
    }
}
