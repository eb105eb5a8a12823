//! Findings and reports: each check gives PASS, WARN, FAIL (or INFO for what is only reported
//! or could not be tested), a one-line reason and the fix; rendered as text (colour optional)
//! or JSON. Exit status: 0 no FAIL, 1 at least one FAIL (2, could not run, is the caller's).

use std::fmt::Write as _;

use serde::Serialize;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Reported only, or not tested (says why).
    Info,
    /// Conforms.
    Pass,
    /// Works, but should be changed.
    Warn,
    /// Will break the trunk, or breaks the profile.
    Fail,
}

impl Status {
    /// `PASS`, `WARN`, `FAIL`, `INFO`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Info => "INFO",
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Status::Info => "\x1b[2m",
            Status::Pass => "\x1b[32m",
            Status::Warn => "\x1b[33m",
            Status::Fail => "\x1b[1;31m",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable check name (`tls.version.1.0`, `chain.complete`, `names.match`, `sip.options`).
    pub check: String,
    /// Verdict.
    pub status: Status,
    /// Stable reason code for machines and tests (`IncompleteChain`, `IpOnly`, `Accepted`).
    pub code: String,
    /// One line: what was found.
    pub reason: String,
    /// One line: what to do (empty for PASS/INFO).
    pub fix: String,
}

impl Finding {
    /// A finding.
    pub fn new(check: impl Into<String>, status: Status, code: &str, reason: impl Into<String>, fix: &str) -> Self {
        Finding { check: check.into(), status, code: code.to_string(), reason: reason.into(), fix: fix.to_string() }
    }

    /// A PASS with no fix.
    pub fn pass(check: impl Into<String>, code: &str, reason: impl Into<String>) -> Self {
        Finding::new(check, Status::Pass, code, reason, "")
    }

    /// An INFO line.
    pub fn info(check: impl Into<String>, code: &str, reason: impl Into<String>) -> Self {
        Finding::new(check, Status::Info, code, reason, "")
    }
}

/// The checks of one address.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// The name validated in the certificate (target host or SRV domain).
    pub name: String,
    /// The address connected to.
    pub address: String,
    /// How it was found (`direct`, `srv`, `naptr`, `--connect`).
    pub source: String,
    /// Findings in check order.
    pub findings: Vec<Finding>,
}

impl TargetReport {
    /// Findings of one check name.
    pub fn get(&self, check: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.check == check).collect()
    }

    /// The worst status.
    pub fn worst(&self) -> Status {
        self.findings.iter().map(|f| f.status).max().unwrap_or(Status::Info)
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was checked, as given.
    pub target: String,
    /// `outbound` (we connect) or `inbound` (the peer connects to us).
    pub mode: &'static str,
    /// The profile's name.
    pub profile: String,
    /// Findings that concern the whole run (resolution).
    pub general: Vec<Finding>,
    /// One entry per address checked.
    pub targets: Vec<TargetReport>,
}

impl Report {
    /// Every finding.
    pub fn all(&self) -> impl Iterator<Item = &Finding> {
        self.general.iter().chain(self.targets.iter().flat_map(|t| t.findings.iter()))
    }

    /// Count of each status: (pass, warn, fail, info).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for f in self.all() {
            match f.status {
                Status::Pass => c.0 += 1,
                Status::Warn => c.1 += 1,
                Status::Fail => c.2 += 1,
                Status::Info => c.3 += 1,
            }
        }
        c
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.all().any(|f| f.status == Status::Fail)
    }

    /// 0 when no check failed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.failed())
    }

    /// JSON for machines.
    pub fn to_json(&self) -> String {
        let (pass, warn, fail, info) = self.counts();
        let v = serde_json::json!({
            "target": self.target,
            "mode": self.mode,
            "profile": self.profile,
            "result": if self.failed() { "FAIL" } else { "PASS" },
            "counts": { "pass": pass, "warn": warn, "fail": fail, "info": info },
            "general": self.general,
            "targets": self.targets,
        });
        serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The readable report; `colour` adds ANSI colours (only on a terminal).
    pub fn to_text(&self, colour: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "trunkgate check {} ({}), profile {}", self.target, self.mode, self.profile);
        let line = |s: &mut String, f: &Finding| {
            let label = if colour {
                format!("{}{}\x1b[0m", f.status.colour(), f.status.label())
            } else {
                f.status.label().into()
            };
            let _ = writeln!(s, "  {label}  {:<22} {}", f.check, f.reason);
            if !f.fix.is_empty() && matches!(f.status, Status::Warn | Status::Fail) {
                let _ = writeln!(s, "        {:<22} fix: {}", "", f.fix);
            }
        };
        for f in &self.general {
            line(&mut s, f);
        }
        for t in &self.targets {
            let _ = writeln!(s, "\n{} at {} ({})", t.name, t.address, t.source);
            for f in &t.findings {
                line(&mut s, f);
            }
        }
        let (pass, warn, fail, info) = self.counts();
        let verdict = if self.failed() { "FAIL" } else { "PASS" };
        let _ = writeln!(s, "\nresult: {verdict} ({pass} pass, {warn} warn, {fail} fail, {info} info)");
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn exit_code_and_rendering() {
        let mut r = Report {
            target: "sips:x.test".into(),
            mode: "outbound",
            profile: "byoc-cloud".into(),
            general: vec![],
            targets: vec![TargetReport {
                name: "x.test".into(),
                address: "127.0.0.1:5061".into(),
                source: "direct".into(),
                findings: vec![Finding::pass("tls.version.1.2", "Accepted", "TLS 1.2 accepted")],
            }],
        };
        assert_eq!(r.exit_code(), 0);
        r.targets[0].findings.push(Finding::new(
            "chain.complete",
            Status::Fail,
            "IncompleteChain",
            "leaf only",
            "send it",
        ));
        assert_eq!(r.exit_code(), 1);
        let text = r.to_text(false);
        assert!(text.contains("FAIL  chain.complete"), "{text}");
        assert!(text.contains("fix: send it"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(r.to_text(true).contains("\x1b[1;31mFAIL"));
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["result"], "FAIL");
        assert_eq!(j["targets"][0]["findings"][1]["code"], "IncompleteChain");
    }
}
