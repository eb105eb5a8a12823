//! Call routing as data (SPEC S1, S2): which trunk an inbound call belongs to, which trunk an
//! inside call leaves over, and the Request-URI it carries there.

use trunkgate_sip::Uri;

use crate::config::{split_host_port, Trunk};

/// Why a trunk was chosen, for the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// TGRP (+ trunk-context) in the Request-URI user part (RFC 4904).
    Tgrp,
    /// The dialled number.
    Dnis,
    /// The Request-URI host (FQDN routing).
    Host,
    /// A dialled-number prefix (outbound).
    Prefix,
}

impl MatchedBy {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Tgrp => "tgrp",
            MatchedBy::Dnis => "dnis",
            MatchedBy::Host => "host",
            MatchedBy::Prefix => "prefix",
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether `number` matches a DNIS pattern: exact, or a prefix ending in `*`.
pub fn dnis_matches(pattern: &str, number: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => number.starts_with(prefix),
        None => pattern == number,
    }
}

/// Chooses the trunk for a call that arrived over TLS, best rule first (S2): TGRP with
/// trunk-context, then the dialled number, then the host name. `None` means 404.
pub fn inbound_trunk(trunks: &[Trunk], ruri: &Uri<'_>) -> Option<(usize, MatchedBy)> {
    if let (Some(tgrp), Some(ctx)) = (ruri.tgrp(), ruri.trunk_context()) {
        let (tgrp, ctx) = (text(&tgrp), text(&ctx));
        let found = trunks.iter().position(|t| {
            t.inbound.tgrp.as_deref() == Some(tgrp.as_str())
                && t.inbound.trunk_context.as_deref().is_none_or(|c| c.eq_ignore_ascii_case(&ctx))
        });
        if let Some(i) = found {
            return Some((i, MatchedBy::Tgrp));
        }
    }
    if let Some(number) = ruri.user_number().map(text) {
        if let Some(i) = trunks.iter().position(|t| t.inbound.dnis.iter().any(|p| dnis_matches(p, &number))) {
            return Some((i, MatchedBy::Dnis));
        }
    }
    let host = ruri.host.map(|h| h.to_text())?;
    trunks
        .iter()
        .position(|t| t.inbound.hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)))
        .map(|i| (i, MatchedBy::Host))
}

/// Chooses the trunk for an inside call: `tgrp` in its Request-URI user part names a trunk by
/// its `tgrp`; otherwise the longest matching number prefix (`*` matches any number).
pub fn outbound_trunk(trunks: &[Trunk], ruri: &Uri<'_>) -> Option<(usize, MatchedBy)> {
    if let Some(tgrp) = ruri.tgrp().map(|t| text(&t)) {
        if let Some(i) = trunks.iter().position(|t| t.tgrp.as_deref() == Some(tgrp.as_str())) {
            return Some((i, MatchedBy::Tgrp));
        }
    }
    let number = ruri.user_number().map(text)?;
    let mut best: Option<(usize, usize)> = None;
    for (i, t) in trunks.iter().enumerate() {
        for p in &t.outbound.prefixes {
            let len = if p == "*" {
                0
            } else if number.starts_with(p.as_str()) {
                p.len()
            } else {
                continue;
            };
            if best.is_none_or(|(_, l)| len > l) {
                best = Some((i, len));
            }
        }
    }
    best.map(|(i, _)| (i, MatchedBy::Prefix))
}

/// The Request-URI toward a trunk peer (S1): the dialled number, the trunk's `tgrp` and
/// `trunk-context` when configured, the peer host name and port, and `transport=tls`.
pub fn trunk_request_uri(trunk: &Trunk, number: &str, peer: &str) -> String {
    let (host, port) = split_host_port(peer);
    let mut user = number.to_string();
    if let (Some(g), Some(c)) = (&trunk.tgrp, &trunk.trunk_context) {
        user.push_str(&format!(";tgrp={g};trunk-context={c}"));
    }
    format!("sip:{user}@{host}:{port};transport=tls")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::{InboundMatch, OutboundMatch};

    fn trunk(name: &str) -> Trunk {
        Trunk {
            name: name.into(),
            profile: "byoc-cloud".into(),
            peers: vec![],
            connect: Default::default(),
            trust: vec![],
            allowed_subjects: vec![],
            crl_files: vec![],
            certificate: None,
            key: None,
            tgrp: None,
            trunk_context: None,
            inbound: InboundMatch::default(),
            outbound: OutboundMatch::default(),
            options_interval_s: 30,
            down_after: 3,
            invite_timeout_ms: 32_000,
            srtp: true,
            srtp_suites: vec![],
        }
    }

    #[test]
    fn inbound_prefers_tgrp_then_dnis_then_host() {
        let mut a = trunk("a");
        a.inbound.hosts = vec!["edge.example.com".into()];
        let mut b = trunk("b");
        b.inbound.dnis = vec!["+1317*".into()];
        let mut c = trunk("c");
        c.inbound.tgrp = Some("TG-1".into());
        c.inbound.trunk_context = Some("example.com".into());
        let trunks = vec![a, b, c];
        let u = Uri::parse(b"sip:+13175551212;tgrp=TG-1;trunk-context=example.com@edge.example.com").unwrap();
        assert_eq!(inbound_trunk(&trunks, &u), Some((2, MatchedBy::Tgrp)));
        let u = Uri::parse(b"sip:+13175551212;tgrp=TG-9;trunk-context=example.com@edge.example.com").unwrap();
        assert_eq!(inbound_trunk(&trunks, &u), Some((1, MatchedBy::Dnis)));
        let u = Uri::parse(b"sip:+4420@EDGE.example.com").unwrap();
        assert_eq!(inbound_trunk(&trunks, &u), Some((0, MatchedBy::Host)));
        let u = Uri::parse(b"sip:+4420@other.example.com").unwrap();
        assert_eq!(inbound_trunk(&trunks, &u), None);
    }

    #[test]
    fn outbound_longest_prefix_or_tgrp_and_s1_uri() {
        let mut a = trunk("any");
        a.outbound.prefixes = vec!["*".into()];
        let mut b = trunk("us");
        b.outbound.prefixes = vec!["+1".into()];
        b.tgrp = Some("TG-1".into());
        b.trunk_context = Some("example.com".into());
        let trunks = vec![a, b];
        let u = Uri::parse(b"sip:+13175551212@pbx").unwrap();
        assert_eq!(outbound_trunk(&trunks, &u), Some((1, MatchedBy::Prefix)));
        let u = Uri::parse(b"sip:+4420@pbx").unwrap();
        assert_eq!(outbound_trunk(&trunks, &u), Some((0, MatchedBy::Prefix)));
        let u = Uri::parse(b"sip:+4420;tgrp=TG-1;trunk-context=example.com@pbx").unwrap();
        assert_eq!(outbound_trunk(&trunks, &u), Some((1, MatchedBy::Tgrp)));
        assert_eq!(
            trunk_request_uri(&trunks[1], "+13175551212", "lb01.voice.use1.pure.cloud"),
            "sip:+13175551212;tgrp=TG-1;trunk-context=example.com@lb01.voice.use1.pure.cloud:5061;transport=tls"
        );
    }
}
