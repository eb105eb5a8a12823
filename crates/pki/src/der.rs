//! Just enough DER to build and read the few X.509 structures that the `openssl` crate has no
//! typed API for: subjectAltName, CRL distribution points, key identifiers, CRL entry reason
//! codes, and the extensions of certificates and CSRs we inspect.
//!
//! The reader walks one level at a time over a byte slice, with explicit bounds checks and no
//! recursion; anything it does not understand is an error, never a panic.

/// DER tags used by this crate.
pub(crate) mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const ENUMERATED: u8 = 0x0a;
    pub const SEQUENCE: u8 = 0x30;
    /// `[n]` primitive, context-specific.
    pub const fn ctx(n: u8) -> u8 {
        0x80 | n
    }
    /// `[n]` constructed, context-specific.
    pub const fn ctx_cons(n: u8) -> u8 {
        0xa0 | n
    }
}

/// Object identifiers (content octets) used by this crate.
pub(crate) mod oid {
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const CRL_REASON: &[u8] = &[0x55, 0x1d, 0x15];
    pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
}

/// Encode one tag-length-value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | be.len() as u8);
        out.extend_from_slice(&be);
    }
    out.extend_from_slice(content);
    out
}

/// Concatenate encoded items.
pub(crate) fn cat(items: &[Vec<u8>]) -> Vec<u8> {
    items.concat()
}

/// One decoded element: its tag and its content octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

/// Why a DER walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError(pub &'static str);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Read one element from the front of `input`; return it and the rest.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError("truncated DER (no tag)"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte DER tags are not used by X.509"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(DerError("truncated DER (no length)"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(DerError("unsupported DER length"));
        }
        let (bytes, after) = rest.split_at_checked(n).ok_or(DerError("truncated DER length"))?;
        rest = after;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (content, rest) = rest.split_at_checked(len).ok_or(DerError("DER length runs past the end"))?;
    Ok((Tlv { tag, content }, rest))
}

/// Read exactly one element with the expected tag, and nothing after it.
pub(crate) fn read_only(input: &[u8], want: u8) -> Result<&[u8], DerError> {
    let (t, rest) = read(input)?;
    if t.tag != want {
        return Err(DerError("unexpected DER tag"));
    }
    if !rest.is_empty() {
        return Err(DerError("trailing bytes after DER element"));
    }
    Ok(t.content)
}

/// All elements of a constructed value's content, in order.
pub(crate) fn items(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = read(content)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

/// One X.509 extension, decoded to its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ext<'a> {
    pub oid: &'a [u8],
    pub critical: bool,
    pub value: &'a [u8],
}

/// Decode `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }`.
pub(crate) fn extension(der: &[u8]) -> Result<Ext<'_>, DerError> {
    extension_parts(read_only(der, tag::SEQUENCE)?)
}

fn extension_parts(content: &[u8]) -> Result<Ext<'_>, DerError> {
    match items(content)?.as_slice() {
        [o, v] if o.tag == tag::OID && v.tag == tag::OCTET_STRING => {
            Ok(Ext { oid: o.content, critical: false, value: v.content })
        }
        [o, c, v] if o.tag == tag::OID && c.tag == tag::BOOLEAN && v.tag == tag::OCTET_STRING => {
            Ok(Ext { oid: o.content, critical: c.content.iter().any(|b| *b != 0), value: v.content })
        }
        _ => Err(DerError("malformed extension")),
    }
}

/// The extensions of a DER certificate (`tbsCertificate [3]`).
pub(crate) fn cert_extensions(cert_der: &[u8]) -> Result<Vec<Ext<'_>>, DerError> {
    let cert = items(read_only(cert_der, tag::SEQUENCE)?)?;
    let tbs = cert.first().ok_or(DerError("empty certificate"))?;
    let Some(exts) = items(tbs.content)?.into_iter().find(|t| t.tag == tag::ctx_cons(3)) else {
        return Ok(Vec::new());
    };
    items(read_only(exts.content, tag::SEQUENCE)?)?
        .into_iter()
        .map(|t| match t.tag {
            tag::SEQUENCE => extension_parts(t.content),
            _ => Err(DerError("malformed extension")),
        })
        .collect()
}

/// Is this `BasicConstraints` value `cA TRUE`?
pub(crate) fn basic_constraints_ca(value: &[u8]) -> Result<bool, DerError> {
    let parts = items(read_only(value, tag::SEQUENCE)?)?;
    Ok(parts.first().is_some_and(|t| t.tag == tag::BOOLEAN && t.content.iter().any(|b| *b != 0)))
}

/// Dotted text of an OID's content octets (e.g. `1.3.6.1.5.5.7.3.1`).
pub(crate) fn oid_text(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for b in content {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Hex with a separator, upper case (`AB:CD:…`).
pub(crate) fn hex(bytes: &[u8], sep: &str) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(sep)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let enc = tlv(tag::OCTET_STRING, &content);
            let (t, rest) = read(&enc).unwrap();
            assert_eq!(t.content.len(), len);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let enc = tlv(tag::SEQUENCE, &[1, 2, 3, 4]);
        for cut in 0..enc.len() {
            assert!(read_only(&enc[..cut], tag::SEQUENCE).is_err());
        }
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
    }

    #[test]
    fn oid_text_decodes_multibyte_arcs() {
        // 1.3.6.1.5.5.7.3.1 (serverAuth) and 2.5.29.17
        assert_eq!(oid_text(&[0x2b, 6, 1, 5, 5, 7, 3, 1]), "1.3.6.1.5.5.7.3.1");
        assert_eq!(oid_text(oid::SUBJECT_ALT_NAME), "2.5.29.17");
        assert_eq!(oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]), "1.2.840.113549");
    }

    #[test]
    fn basic_constraints_flags() {
        let ca = tlv(tag::SEQUENCE, &tlv(tag::BOOLEAN, &[0xff]));
        let leaf = tlv(tag::SEQUENCE, &[]);
        assert!(basic_constraints_ca(&ca).unwrap());
        assert!(!basic_constraints_ca(&leaf).unwrap());
    }
}
