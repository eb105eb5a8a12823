//! Reading, describing and converting PKI files (SPEC P6, T10): certificates, chains, CSRs, CRLs
//! and private keys, as PEM (any number of blocks, any mix) or DER (one object), detected from
//! the bytes. Descriptions never print key material.

use std::path::Path;

use openssl::asn1::Asn1Object;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::{ReasonCode, X509Crl, X509CrlRef, X509Ref, X509Req, X509ReqRef, X509};

use crate::crl::RevocationReason;
use crate::der::{self, oid, tag};
use crate::error::{CryptoContext, Error, Result};
use crate::issuer::subject_text;
use crate::key;
use crate::serial::Serial;
use crate::time;

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pem,
    Der,
}

/// One object read from a file.
#[non_exhaustive]
pub enum Object {
    Certificate(X509),
    Request(X509Req),
    Crl(X509Crl),
    PrivateKey(PKey<Private>),
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Object {
    /// `certificate`, `CSR`, `CRL`, `private key`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Certificate(_) => "certificate",
            Object::Request(_) => "CSR",
            Object::Crl(_) => "CRL",
            Object::PrivateKey(_) => "private key",
        }
    }

    fn to_der(&self) -> Result<Vec<u8>> {
        match self {
            Object::Certificate(c) => c.to_der(),
            Object::Request(r) => r.to_der(),
            Object::Crl(c) => c.to_der(),
            Object::PrivateKey(k) => k.private_key_to_pkcs8(),
        }
        .ctx("encoding to DER")
    }

    fn to_pem(&self) -> Result<Vec<u8>> {
        match self {
            Object::Certificate(c) => c.to_pem(),
            Object::Request(r) => r.to_pem(),
            Object::Crl(c) => c.to_pem(),
            Object::PrivateKey(k) => k.private_key_to_pem_pkcs8(),
        }
        .ctx("encoding to PEM")
    }
}

/// Does this look like PEM text (rather than DER)?
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| s.contains("-----BEGIN "))
}

/// Read a file's objects. `path` names the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<(Format, Vec<Object>)> {
    if looks_like_pem(bytes) {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::unreadable(path, "not UTF-8"))?;
        return Ok((Format::Pem, parse_pem(text, path)?));
    }
    let obj = X509::from_der(bytes)
        .map(Object::Certificate)
        .or_else(|_| X509Crl::from_der(bytes).map(Object::Crl))
        .or_else(|_| X509Req::from_der(bytes).map(Object::Request))
        .or_else(|_| PKey::private_key_from_der(bytes).map(Object::PrivateKey))
        .map_err(|_| {
            Error::unreadable(path, "not a certificate, CSR, CRL or private key (neither PEM nor DER of any of them)")
        })?;
    Ok((Format::Der, vec![obj]))
}

/// Read and parse a file.
pub fn read_file(path: &Path) -> Result<(Format, Vec<Object>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

fn parse_pem(text: &str, path: &Path) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = rest.get(start..).unwrap_or_default();
        let label = block
            .get("-----BEGIN ".len()..)
            .and_then(|l| l.split_once("-----"))
            .map(|(l, _)| l.to_string())
            .ok_or_else(|| Error::unreadable(path, "a PEM BEGIN line is not closed"))?;
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| Error::unreadable(path, format!("the PEM block {label} has no END line")))?;
        let pem = block.get(..end + end_marker.len()).unwrap_or_default().as_bytes();
        let damaged = |_| Error::unreadable(path, format!("the PEM block {label} (#{}) is damaged", out.len() + 1));
        let obj = match label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" => Object::Certificate(X509::from_pem(pem).map_err(damaged)?),
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Object::Request(X509Req::from_pem(pem).map_err(damaged)?),
            "X509 CRL" => Object::Crl(X509Crl::from_pem(pem).map_err(damaged)?),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" if !block.get(..end).unwrap_or_default().contains("ENCRYPTED") => {
                // A callback that gives no passphrase, so OpenSSL never prompts on a terminal.
                Object::PrivateKey(PKey::private_key_from_pem_callback(pem, |_| Ok(0)).map_err(damaged)?)
            }
            "ENCRYPTED PRIVATE KEY" | "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                return Err(Error::unreadable(
                    path,
                    "holds an encrypted private key; trunkgate reads unencrypted keys only (decrypt with `openssl pkey`)",
                ))
            }
            other => {
                return Err(Error::unreadable(
                    path,
                    format!("PEM block {other:?} is not a certificate, CSR, CRL or private key"),
                ))
            }
        };
        out.push(obj);
        rest = block.get(end + end_marker.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(Error::unreadable(path, "no PEM block found"));
    }
    Ok(out)
}

/// The first certificate in a file (PEM or DER).
pub fn first_certificate(path: &Path) -> Result<X509> {
    let (_, objects) = read_file(path)?;
    objects
        .into_iter()
        .find_map(|o| match o {
            Object::Certificate(c) => Some(c),
            _ => None,
        })
        .ok_or_else(|| Error::unreadable(path, "holds no certificate"))
}

/// The OpenSSL subject hash, exactly as `openssl x509 -subject_hash -noout` prints it
/// (SPEC P6, T6).
pub fn subject_hash(cert: &X509Ref) -> String {
    format!("{:08x}", cert.subject_name_hash())
}

/// Encode objects for export (SPEC T10). DER holds exactly one object.
pub fn encode(objects: &[Object], format: Format, path: &Path) -> Result<Vec<u8>> {
    match (format, objects) {
        (Format::Der, [one]) => one.to_der(),
        (Format::Der, _) => Err(Error::unreadable(
            path,
            format!("holds {} objects; DER holds one (split the chain, or export as PEM)", objects.len()),
        )),
        (Format::Pem, _) => Ok(objects.iter().map(Object::to_pem).collect::<Result<Vec<_>>>()?.concat()),
    }
}

/// Is any of these a private key (so the export must be written with mode 0600)?
pub fn has_private_key(objects: &[Object]) -> bool {
    objects.iter().any(|o| matches!(o, Object::PrivateKey(_)))
}

/// A human description of every object, as `trunkgate pki show` prints it.
pub fn describe(objects: &[Object], format: Format, now: i64) -> Result<String> {
    let mut out = String::new();
    let enc = match format {
        Format::Pem => "PEM",
        Format::Der => "DER",
    };
    for (i, obj) in objects.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} {}/{} ({enc})\n", obj.kind(), i + 1, objects.len()));
        let lines = match obj {
            Object::Certificate(c) => describe_cert(c, now)?,
            Object::Request(r) => describe_csr(r)?,
            Object::Crl(c) => describe_crl(c, now)?,
            Object::PrivateKey(k) => vec![("key", format!("{} (key material not shown)", key::describe(k)))],
        };
        for (label, value) in lines {
            out.push_str(&format!("  {:<20} {value}\n", format!("{label}:")));
        }
    }
    Ok(out)
}

fn validity_text(not_before: i64, not_after: i64, now: i64) -> String {
    let state = if now < not_before {
        format!("NOT YET VALID, starts in {} days", time::days_between(now, not_before))
    } else if now > not_after {
        format!("EXPIRED {} days ago", time::days_between(not_after, now))
    } else {
        format!("{} days left", time::days_between(now, not_after))
    };
    format!("{} .. {} ({state})", time::format(not_before), time::format(not_after))
}

fn oid_name(content: &[u8]) -> String {
    let dotted = der::oid_text(content);
    Asn1Object::from_str(&dotted).ok().and_then(|o| o.nid().short_name().ok().map(str::to_string)).unwrap_or(dotted)
}

fn key_usage_names(value: &[u8]) -> String {
    const NAMES: [&str; 9] = [
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
        "decipherOnly",
    ];
    let bits = der::read_only(value, tag::BIT_STRING).ok().and_then(|b| b.get(1..)).unwrap_or_default();
    let on = |i: usize| bits.get(i / 8).is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0);
    let names: Vec<&str> = NAMES.iter().enumerate().filter(|(i, _)| on(*i)).map(|(_, n)| *n).collect();
    names.join(", ")
}

fn describe_cert(c: &X509Ref, now: i64) -> Result<Vec<(&'static str, String)>> {
    let mut l = vec![
        ("subject", subject_text(c.subject_name())),
        ("issuer", subject_text(c.issuer_name())),
        ("serial", Serial::from_asn1(c.serial_number())?.to_hex()),
        ("subject hash", subject_hash(c)),
        ("key", key::describe(&*c.public_key().ctx("reading a public key")?)),
        ("signature", c.signature_algorithm().object().to_string()),
        ("validity", validity_text(time::from_asn1(c.not_before())?, time::from_asn1(c.not_after())?, now)),
    ];
    let der_cert = c.to_der().ctx("encoding a certificate")?;
    let exts = der::cert_extensions(&der_cert).unwrap_or_default();
    let ext = |o: &[u8]| exts.iter().find(|e| e.oid == o);
    let ca = ext(oid::BASIC_CONSTRAINTS).is_some_and(|e| der::basic_constraints_ca(e.value).unwrap_or(false));
    l.push((
        "CA",
        match (ca, c.pathlen()) {
            (true, Some(n)) => format!("yes (path length {n})"),
            (true, None) => "yes".to_string(),
            (false, _) => "no".to_string(),
        },
    ));
    if let Some(e) = ext(oid::KEY_USAGE) {
        l.push(("key usage", key_usage_names(e.value)));
    }
    if let Some(e) = ext(oid::EXT_KEY_USAGE) {
        let purposes = der::read_only(e.value, tag::SEQUENCE)
            .and_then(der::items)
            .map(|items| items.iter().map(|t| oid_name(t.content)).collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|_| "<malformed>".to_string());
        l.push(("extended key usage", purposes));
    }
    let names = alt_names(c);
    if !names.is_empty() {
        l.push(("subject alt names", names.join(", ")));
    }
    if let Some(points) = c.crl_distribution_points() {
        let urls: Vec<String> = points
            .iter()
            .filter_map(|p| p.distpoint().and_then(|d| d.fullname()))
            .flat_map(|names| names.iter().filter_map(|n| n.uri().map(str::to_string)).collect::<Vec<_>>())
            .collect();
        l.push(("CRL distribution", urls.join(", ")));
    }
    if let Some(ski) = c.subject_key_id() {
        l.push(("subject key id", der::hex(ski.as_slice(), ":")));
    }
    if let Some(aki) = c.authority_key_id() {
        l.push(("authority key id", der::hex(aki.as_slice(), ":")));
    }
    let fp = c.digest(MessageDigest::sha256()).ctx("hashing a certificate")?;
    l.push(("SHA-256 fingerprint", der::hex(&fp, ":")));
    Ok(l)
}

/// A certificate's subjectAltName entries as `DNS:…`, `IP:…`, `URI:…`, `email:…`.
pub fn alt_names(c: &X509Ref) -> Vec<String> {
    let Some(names) = c.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .map(|n| {
            if let Some(d) = n.dnsname() {
                format!("DNS:{d}")
            } else if let Some(u) = n.uri() {
                format!("URI:{u}")
            } else if let Some(e) = n.email() {
                format!("email:{e}")
            } else if let Some(ip) = n.ipaddress() {
                crate::names::ip_from_octets(ip).map_or("IP:<malformed>".to_string(), |ip| format!("IP:{ip}"))
            } else {
                "<other name>".to_string()
            }
        })
        .collect()
}

fn describe_csr(r: &X509ReqRef) -> Result<Vec<(&'static str, String)>> {
    let public = r.public_key().ctx("reading a CSR's public key")?;
    let mut l = vec![
        ("subject", subject_text(r.subject_name())),
        ("key", key::describe(&public)),
        (
            "signature",
            if r.verify(&public).unwrap_or(false) {
                "verifies with its own key".to_string()
            } else {
                "DOES NOT VERIFY (altered or damaged CSR)".to_string()
            },
        ),
    ];
    for ext in r.extensions().map(|s| s.into_iter().collect::<Vec<_>>()).unwrap_or_default() {
        let Ok(der_ext) = ext.to_der() else { continue };
        let Ok(e) = der::extension(&der_ext) else { continue };
        if e.oid == oid::SUBJECT_ALT_NAME {
            let names = crate::names::AltNames::from_der(e.value)
                .map(|n| n.describe().join(", "))
                .unwrap_or_else(|err| format!("<{err}>"));
            l.push(("requested alt names", names));
        } else if e.oid == oid::BASIC_CONSTRAINTS {
            let ca = der::basic_constraints_ca(e.value).unwrap_or(false);
            l.push(("requested CA", if ca { "yes (trunkgate will refuse it)" } else { "no" }.to_string()));
        } else {
            l.push(("requested extension", oid_name(e.oid)));
        }
    }
    Ok(l)
}

fn describe_crl(c: &X509CrlRef, now: i64) -> Result<Vec<(&'static str, String)>> {
    let this_update = time::from_asn1(c.last_update())?;
    let mut l = vec![("issuer", subject_text(c.issuer_name())), ("this update", time::format(this_update))];
    let next = match c.next_update() {
        Some(t) => {
            let t = time::from_asn1(t)?;
            let state = if now > t {
                format!("EXPIRED {} days ago", time::days_between(t, now))
            } else {
                format!("in {} days", time::days_between(now, t))
            };
            format!("{} ({state})", time::format(t))
        }
        None => "none".to_string(),
    };
    l.push(("next update", next));
    if let Ok(Some((_, n))) = c.extension::<openssl::x509::CrlNumber>() {
        let n = n.to_bn().ok().and_then(|b| b.to_dec_str().ok().map(|s| s.to_string()));
        l.push(("CRL number", n.unwrap_or_default()));
    }
    let revoked = c.get_revoked().map(|s| s.iter().collect::<Vec<_>>()).unwrap_or_default();
    l.push(("revoked", revoked.len().to_string()));
    for r in revoked {
        let serial = Serial::from_asn1(r.serial_number())?;
        let reason = match r.extension::<ReasonCode>() {
            Ok(Some((_, code))) => code
                .get_i64()
                .ok()
                .and_then(RevocationReason::from_code)
                .map_or("unknown reason".to_string(), |r| r.name().to_string()),
            _ => RevocationReason::Unspecified.name().to_string(),
        };
        let at = time::format(time::from_asn1(r.revocation_date())?);
        l.push(("  serial", format!("{serial} revoked {at} ({reason})")));
    }
    Ok(l)
}
