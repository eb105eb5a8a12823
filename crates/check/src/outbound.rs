//! The outbound check: resolve, then for each address probe, examine the chain, connect with
//! trunkgate's TLS client policy, and speak SIP.

use std::net::TcpStream;

use trunkgate_resolve::{Resolver, ResolverOptions, SipTarget, Source, Target};
use trunkgate_tls::{ClientCertPolicy, ClientConfig, PeerOptions, TlsClient, Verification};

use crate::chain::{self, ChainContext};
use crate::probe::Prober;
use crate::report::{Finding, Report, Status, TargetReport};
use crate::{CheckError, CheckOptions};

fn targets(opts: &CheckOptions, general: &mut Vec<Finding>) -> Result<Vec<(Target, String)>, CheckError> {
    let t = SipTarget::parse(&opts.target)?;
    if let Some(addr) = opts.connect {
        let target = Target {
            cert_name: t.host.clone(),
            host_name: t.host.clone(),
            addr,
            transport: "tls",
            priority: 0,
            weight: 0,
            srv_name: None,
            source: Source::Direct,
        };
        general.push(Finding::info(
            "resolve",
            "Connect",
            format!("connecting to {addr} as given by --connect; validating the name {}", t.host),
        ));
        return Ok(vec![(target, "--connect".into())]);
    }
    let r = Resolver::new(&ResolverOptions { nameserver: opts.nameserver, timeout: opts.timeout, attempts: 2 })?;
    let list = r.resolve_blocking(&t)?;
    let shown: Vec<String> = list
        .iter()
        .map(|x| match &x.srv_name {
            Some(s) => format!("{} {}:{} (prio {}, weight {})", s, x.host_name, x.addr, x.priority, x.weight),
            None => format!("{} {}", x.host_name, x.addr),
        })
        .collect();
    general.push(Finding::info(
        "resolve",
        "Resolved",
        format!("{} address(es) in failover order: {}", list.len(), shown.join("; ")),
    ));
    Ok(list
        .into_iter()
        .map(|x| {
            let how = match x.source {
                Source::Naptr => "naptr",
                Source::Srv => "srv",
                Source::Direct => "direct",
            };
            (x, how.to_string())
        })
        .collect())
}

/// Run every check against every address of the target. `progress` is told what is being
/// probed (for a progress indicator). An `Err` means the check could not run (exit status 2).
pub fn check_outbound(opts: &CheckOptions, progress: &mut dyn FnMut(&str)) -> Result<Report, CheckError> {
    let mut general = Vec::new();
    let list = targets(opts, &mut general)?;
    let client = TlsClient::new(&ClientConfig::new(opts.profile.clone(), opts.trust.anchors()))
        .map_err(|e| CheckError::Setup { what: "the TLS client".into(), detail: e.to_string() })?;
    let mut reports = Vec::new();
    for (t, how) in list {
        progress(&format!("checking {} at {}", t.cert_name, t.addr));
        reports.push(check_one(opts, &client, &t, &how, progress));
    }
    Ok(Report {
        target: opts.target.clone(),
        mode: "outbound",
        profile: opts.profile.name.clone(),
        general,
        targets: reports,
    })
}

fn check_one(
    opts: &CheckOptions,
    client: &TlsClient,
    t: &Target,
    how: &str,
    progress: &mut dyn FnMut(&str),
) -> TargetReport {
    let mut findings = Vec::new();
    let is_ip = t.cert_name.parse::<std::net::IpAddr>().is_ok();
    let sni = if is_ip { None } else { Some(t.cert_name.clone()) };
    let rep = |findings: Vec<Finding>| TargetReport {
        name: t.cert_name.clone(),
        address: t.addr.to_string(),
        source: how.to_string(),
        findings,
    };
    // ---- reachability
    if let Err(e) = TcpStream::connect_timeout(&t.addr, opts.timeout) {
        findings.push(Finding::new(
            "tcp.connect",
            Status::Fail,
            "Unreachable",
            format!("cannot connect to {}: {e}", t.addr),
            "check the address, the port (5061) and firewalls",
        ));
        return rep(findings);
    }
    findings.push(Finding::pass("tcp.connect", "Connected", format!("TCP connection to {} accepted", t.addr)));
    // ---- protocol probes
    let prober = Prober { addr: t.addr, sni: sni.clone(), timeout: opts.timeout, pace: opts.pace };
    match prober.run(&opts.profile, progress) {
        Ok((f, _)) => findings.extend(f),
        Err(e) => {
            findings.push(Finding::new(
                "tls.probe",
                Status::Fail,
                "ProbeFailed",
                e.to_string(),
                "check that the server speaks TLS on this port",
            ));
            return rep(findings);
        }
    }
    // ---- the chain as sent
    progress("fetching the certificate chain");
    match chain::fetch_chain(t.addr, sni.as_deref(), &opts.profile, opts.timeout) {
        Ok((certs, how)) => {
            findings.push(Finding::info("chain.fetched", "Fetched", format!("chain fetched over {how}")));
            let cx = ChainContext {
                profile: &opts.profile,
                table: &opts.trust.table,
                table_roots: &opts.trust.table_roots,
                extra_roots: &opts.trust.extra_roots,
                extra_origin: &opts.trust.extra_origin,
                cert_name: &t.cert_name,
                srv_host: if t.source == Source::Direct { None } else { Some(t.host_name.as_str()) },
            };
            progress("checking the chain and fetching CRLs");
            findings.extend(chain::analyse(&certs, &cx));
        }
        Err(e) => findings.push(Finding::new(
            "chain.fetched",
            Status::Fail,
            "NoHandshake",
            format!("no TLS handshake possible to read the certificate: {e}"),
            "check the server's TLS configuration",
        )),
    }
    // ---- trunkgate's own policy, as the edge would connect
    progress("connecting with the profile's policy");
    let tcp = match TcpStream::connect_timeout(&t.addr, opts.timeout) {
        Ok(s) => s,
        Err(e) => {
            findings.push(Finding::new(
                "tls.handshake",
                Status::Fail,
                "Unreachable",
                format!("cannot connect: {e}"),
                "check reachability",
            ));
            return rep(findings);
        }
    };
    let _ = tcp.set_read_timeout(Some(opts.timeout));
    let _ = tcp.set_write_timeout(Some(opts.timeout));
    let local = tcp.local_addr().ok();
    let asks_fix = "seed 002: the cloud side presents no client certificate and server certificates lose clientAuth; configure the server for one-way TLS (do not request a client certificate on this trunk, SPEC T3)";
    let one_way = opts.profile.client_cert == ClientCertPolicy::None && !opts.profile.present_client_cert;
    let cert_request = |received: bool, findings: &mut Vec<Finding>| {
        findings.push(match (received, one_way) {
            (true, true) => Finding::new(
                "tls.certificate-request",
                Status::Fail,
                "CertificateRequest",
                format!(
                    "the server asked for a client certificate (CertificateRequest); on {} the client presents none",
                    opts.profile.name
                ),
                asks_fix,
            ),
            (true, false) => Finding::info(
                "tls.certificate-request",
                "CertificateRequest",
                "the server asked for a client certificate (mutual TLS)",
            ),
            (false, _) => {
                Finding::pass("tls.certificate-request", "None", "no CertificateRequest: one-way TLS (SPEC T3)")
            }
        });
    };
    match client.connect_blocking(&t.cert_name, &PeerOptions::default(), tcp) {
        Ok((mut stream, info)) => {
            let how = format!(
                "{} {}{}",
                info.version.as_deref().unwrap_or("?"),
                info.cipher.as_deref().unwrap_or("?"),
                info.group.as_deref().map(|g| format!(" {g}")).unwrap_or_default()
            );
            let verdict = match &info.verification {
                Verification::Verified => "certificate verified",
                _ => "no certificate check",
            };
            findings.push(Finding::pass(
                "tls.handshake",
                "Connected",
                format!("handshake with profile {}: {how}, {verdict}", opts.profile.name),
            ));
            for w in &info.warnings {
                findings.push(Finding::new(
                    "tls.warning",
                    Status::Warn,
                    "Warning",
                    w.clone(),
                    "see the matching check above",
                ));
            }
            cert_request(info.certificate_request_received, &mut findings);
            if let Some(local) = local {
                progress("SIP OPTIONS, keepalive and reuse");
                let st =
                    crate::sip::SipTarget { host: &t.cert_name, port: t.addr.port(), local, timeout: opts.sip_timeout };
                findings.extend(crate::sip::sip_checks(&mut stream, &st));
            }
        }
        Err(e) => {
            findings.push(Finding::new(
                "tls.handshake",
                Status::Fail,
                e.reason.code(),
                format!("profile {} refuses the connection: {}", opts.profile.name, e.reason.explanation()),
                e.reason.fix(),
            ));
            cert_request(e.info.certificate_request_received, &mut findings);
            findings.push(Finding::info(
                "sip.options",
                "NotRun",
                "SIP checks not run: the TLS connection was refused (see tls.handshake)",
            ));
        }
    }
    rep(findings)
}
