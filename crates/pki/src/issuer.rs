//! Making certificates in memory: roots, intermediates and leaves, with every field under the
//! caller's control (validity window, key type, EKU, SANs, CRL distribution point). The on-disk
//! CA ([`crate::Ca`]) and the tests of other crates both build on this.
//!
//! Profiles (RFC 5280):
//! - CA: basicConstraints critical CA:true (pathlen 0 for an intermediate), keyUsage critical
//!   keyCertSign + cRLSign, SKI, AKI.
//! - leaf: basicConstraints critical CA:false, keyUsage critical digitalSignature (+
//!   keyEncipherment for RSA server keys: the TLS_RSA_* suites of SPEC T2 need it), EKU
//!   serverAuth and/or clientAuth exactly as asked (SPEC T11), SKI, AKI, subjectAltName, CRL
//!   distribution point (P4).

use openssl::asn1::{Asn1Object, Asn1OctetString};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509Extension, X509Name, X509NameRef, X509Ref, X509};

use crate::der::{self, oid, tag};
use crate::error::{CryptoContext, Error, Result};
use crate::key::{self, KeyType};
use crate::names::{self, AltNames};
use crate::serial::Serial;
use crate::time::{self, Validity};

/// What a CA certificate should look like.
#[derive(Debug, Clone)]
pub struct CaSpec {
    pub cn: String,
    pub key: KeyType,
    pub validity: Validity,
}

impl CaSpec {
    pub fn new(cn: &str, key: KeyType, validity: Validity) -> Self {
        CaSpec { cn: cn.to_string(), key, validity }
    }
}

/// What an end-entity certificate should look like.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject CN. For a server, the host part (before any `/`, SPEC H2) also becomes a SAN.
    pub cn: String,
    /// DNS names or IP addresses for the subjectAltName.
    pub hosts: Vec<String>,
    /// `sip:`/`sips:` URIs for the subjectAltName (RFC 5922).
    pub sip_uris: Vec<String>,
    /// E-mail addresses for the subjectAltName.
    pub emails: Vec<String>,
    pub server_auth: bool,
    pub client_auth: bool,
    pub validity: Validity,
    pub key: KeyType,
    /// CRL distribution point URL (SPEC P4).
    pub crl_url: Option<String>,
}

impl LeafSpec {
    /// A TLS server certificate: EKU serverAuth only (SPEC T11), RSA 2048 by default.
    pub fn server(cn: &str, validity: Validity) -> Self {
        LeafSpec {
            cn: cn.to_string(),
            hosts: Vec::new(),
            sip_uris: Vec::new(),
            emails: Vec::new(),
            server_auth: true,
            client_auth: false,
            validity,
            key: KeyType::Rsa2048,
            crl_url: None,
        }
    }

    /// A TLS client certificate: EKU clientAuth only.
    pub fn client(cn: &str, validity: Validity) -> Self {
        LeafSpec { server_auth: false, client_auth: true, ..LeafSpec::server(cn, validity) }
    }

    /// Add a DNS name or IP address.
    pub fn san(mut self, host: &str) -> Self {
        self.hosts.push(host.to_string());
        self
    }

    /// Add a SIP URI SAN.
    pub fn sip_uri(mut self, uri: &str) -> Self {
        self.sip_uris.push(uri.to_string());
        self
    }

    /// Add an e-mail SAN.
    pub fn email(mut self, email: &str) -> Self {
        self.emails.push(email.to_string());
        self
    }

    /// Also (or no longer) carry EKU clientAuth.
    pub fn client_auth(mut self, on: bool) -> Self {
        self.client_auth = on;
        self
    }

    pub fn key(mut self, key: KeyType) -> Self {
        self.key = key;
        self
    }

    pub fn crl_url(mut self, url: &str) -> Self {
        self.crl_url = Some(url.to_string());
        self
    }

    pub fn validity(mut self, validity: Validity) -> Self {
        self.validity = validity;
        self
    }

    /// The checked subjectAltName entries this spec asks for.
    pub(crate) fn alt_names(&self) -> Result<AltNames> {
        let mut out = AltNames::default();
        if self.server_auth {
            out.add_cn_host(&self.cn);
        }
        for h in &self.hosts {
            out.add_host(h)?;
        }
        for u in &self.sip_uris {
            out.add_sip_uri(u)?;
        }
        for e in &self.emails {
            out.add_email(e)?;
        }
        Ok(out)
    }
}

/// The extensions of an end-entity certificate, apart from the key identifiers.
#[derive(Debug, Clone)]
pub(crate) struct LeafProfile {
    pub names: AltNames,
    pub server_auth: bool,
    pub client_auth: bool,
    pub validity: Validity,
    pub crl_url: Option<String>,
}

/// A freshly issued certificate with its private key and the intermediates that go with it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
    /// Intermediates from the leaf's issuer up to (not including) the root (SPEC T5).
    pub chain: Vec<X509>,
}

impl Issued {
    pub fn cert_pem(&self) -> Result<Vec<u8>> {
        self.cert.to_pem().ctx("encoding a certificate")
    }

    /// PKCS#8 PEM, unencrypted. Write it with mode 0600.
    pub fn key_pem(&self) -> Result<Vec<u8>> {
        self.key.private_key_to_pem_pkcs8().ctx("encoding a private key")
    }

    /// Leaf followed by the intermediates (what a TLS server presents, SPEC T5).
    pub fn chain_pem(&self) -> Result<Vec<u8>> {
        chain_pem(&self.cert, &self.chain)
    }

    pub fn serial(&self) -> Result<Serial> {
        Serial::from_asn1(self.cert.serial_number())
    }
}

pub(crate) fn chain_pem(leaf: &X509Ref, intermediates: &[X509]) -> Result<Vec<u8>> {
    let mut out = leaf.to_pem().ctx("encoding a certificate")?;
    for c in intermediates {
        out.extend(c.to_pem().ctx("encoding a certificate")?);
    }
    Ok(out)
}

/// A CA that can sign: its certificate, its key, and the certificates above it.
#[derive(Debug, Clone)]
pub struct Issuer {
    cert: X509,
    key: PKey<Private>,
    /// Certificates above `cert`, nearest first, root last; empty when `cert` is the root.
    parents: Vec<X509>,
}

impl Issuer {
    /// A self-signed root.
    pub fn new_root(spec: &CaSpec) -> Result<Issuer> {
        let key = spec.key.generate()?;
        let name = subject_cn(&spec.cn)?;
        let cert = build(&name, &key, spec.validity, ca_extensions(None)?, None, &name, &key)?;
        Ok(Issuer { cert, key, parents: Vec::new() })
    }

    /// An intermediate CA signed by this one (pathlen 0: it signs only end entities).
    pub fn new_intermediate(&self, spec: &CaSpec) -> Result<Issuer> {
        let key = spec.key.generate()?;
        let name = subject_cn(&spec.cn)?;
        let cert = build(
            &name,
            &key,
            spec.validity,
            ca_extensions(Some(0))?,
            Some(self.key_id()?),
            self.cert.subject_name(),
            &self.key,
        )?;
        let mut parents = vec![self.cert.clone()];
        parents.extend(self.parents.iter().cloned());
        Ok(Issuer { cert, key, parents })
    }

    /// An issuer from existing parts; the key must belong to the certificate.
    pub fn from_parts(cert: X509, key: PKey<Private>, parents: Vec<X509>) -> Result<Issuer> {
        let public = cert.public_key().ctx("reading a certificate's public key")?;
        if !public.public_eq(&key) {
            return Err(Error::KeyMismatch { what: subject_text(cert.subject_name()) });
        }
        Ok(Issuer { cert, key, parents })
    }

    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// The root at the top of this issuer's chain (itself, for a root).
    pub fn root(&self) -> &X509 {
        self.parents.last().unwrap_or(&self.cert)
    }

    /// The intermediates a leaf signed by this issuer presents: this CA (unless it is the root)
    /// and every CA above it except the root.
    pub fn intermediates(&self) -> Vec<X509> {
        if self.parents.is_empty() {
            return Vec::new();
        }
        let above = self.parents.len() - 1;
        std::iter::once(self.cert.clone()).chain(self.parents.iter().take(above).cloned()).collect()
    }

    /// This CA's validity window.
    pub fn validity(&self) -> Result<Validity> {
        Ok(Validity::new(time::from_asn1(self.cert.not_before())?, time::from_asn1(self.cert.not_after())?))
    }

    /// The keyIdentifier that certificates and CRLs signed by this CA put in their AKI.
    pub(crate) fn key_id(&self) -> Result<Vec<u8>> {
        match self.cert.subject_key_id() {
            Some(ski) => Ok(ski.as_slice().to_vec()),
            None => key_id(&self.key),
        }
    }

    /// Issue a leaf with a freshly generated key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued> {
        names::check_cn(&spec.cn)?;
        let profile = LeafProfile {
            names: spec.alt_names()?,
            server_auth: spec.server_auth,
            client_auth: spec.client_auth,
            validity: spec.validity,
            crl_url: spec.crl_url.clone(),
        };
        let key = spec.key.generate()?;
        let cert = self.sign_leaf(&*subject_cn(&spec.cn)?, &key, &profile)?;
        Ok(Issued { cert, key, chain: self.intermediates() })
    }

    /// Sign an end-entity certificate for someone else's public key.
    pub(crate) fn sign_leaf<T: HasPublic>(
        &self,
        subject: &X509NameRef,
        public: &PKeyRef<T>,
        p: &LeafProfile,
    ) -> Result<X509> {
        if !p.server_auth && !p.client_auth {
            return Err(Error::invalid("certificate profile", "no EKU", "a leaf needs serverAuth or clientAuth"));
        }
        if p.server_auth && p.names.dns.is_empty() && p.names.ips.is_empty() {
            return Err(Error::invalid(
                "server certificate",
                subject_text(subject),
                "needs a host name: a CN that is a DNS name (or FQDN/anything) or at least one --san",
            ));
        }
        let mut exts = vec![BasicConstraints::new().critical().build().ctx("building basicConstraints")?];
        let mut ku = KeyUsage::new();
        ku.critical().digital_signature();
        if p.server_auth && key::is_rsa(public) {
            ku.key_encipherment();
        }
        exts.push(ku.build().ctx("building keyUsage")?);
        let mut eku = ExtendedKeyUsage::new();
        if p.server_auth {
            eku.server_auth();
        }
        if p.client_auth {
            eku.client_auth();
        }
        exts.push(eku.build().ctx("building extendedKeyUsage")?);
        if !p.names.is_empty() {
            // RFC 5280 §4.2.1.6: critical when the subject is empty.
            let critical = subject.entries().next().is_none();
            exts.push(raw_extension(oid::SUBJECT_ALT_NAME, critical, &p.names.to_der())?);
        }
        if let Some(url) = &p.crl_url {
            exts.push(crl_distribution_point(url)?);
        }
        build(subject, public, p.validity, exts, Some(self.key_id()?), self.cert.subject_name(), &self.key)
    }
}

/// `CN=<cn>` as an X.509 name.
pub(crate) fn subject_cn(cn: &str) -> Result<X509Name> {
    names::check_cn(cn)?;
    let mut b = X509Name::builder().ctx("building a name")?;
    b.append_entry_by_nid(Nid::COMMONNAME, cn).ctx("building a name")?;
    Ok(b.build())
}

/// `CN=a, O=b` text of a name, in certificate order.
pub fn subject_text(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let field = e.object().nid().short_name().unwrap_or("?").to_string();
            let value = e.data().to_string().unwrap_or_else(|_| "<unreadable>".to_string());
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ca_extensions(path_len: Option<u32>) -> Result<Vec<X509Extension>> {
    let mut bc = BasicConstraints::new();
    bc.critical().ca();
    if let Some(n) = path_len {
        bc.pathlen(n);
    }
    Ok(vec![
        bc.build().ctx("building basicConstraints")?,
        KeyUsage::new().critical().key_cert_sign().crl_sign().build().ctx("building keyUsage")?,
    ])
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING.
pub(crate) fn key_id<T: HasPublic>(key: &PKeyRef<T>) -> Result<Vec<u8>> {
    let spki = key.public_key_to_der().ctx("encoding a public key")?;
    let bad = |e: der::DerError| Error::invalid("public key", "SubjectPublicKeyInfo", e.to_string());
    let parts = der::items(der::read_only(&spki, tag::SEQUENCE).map_err(bad)?).map_err(bad)?;
    let bits = parts
        .get(1)
        .filter(|t| t.tag == tag::BIT_STRING)
        .and_then(|t| t.content.get(1..))
        .ok_or_else(|| bad(der::DerError("no subjectPublicKey")))?;
    Ok(openssl::sha::sha1(bits).to_vec())
}

/// An extension from its OID content octets and DER value.
pub(crate) fn raw_extension(oid: &[u8], critical: bool, value: &[u8]) -> Result<X509Extension> {
    let obj = Asn1Object::from_str(&der::oid_text(oid)).ctx("encoding an OID")?;
    let octets = Asn1OctetString::new_from_bytes(value).ctx("encoding an extension")?;
    X509Extension::new_from_der(&obj, critical, &octets).ctx("encoding an extension")
}

/// `AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OCTET STRING }`.
pub(crate) fn aki_extension(key_id: &[u8]) -> Result<X509Extension> {
    raw_extension(oid::AUTHORITY_KEY_ID, false, &der::tlv(tag::SEQUENCE, &der::tlv(tag::ctx(0), key_id)))
}

/// One distribution point with one URI (fullName), no reasons, no CRL issuer.
fn crl_distribution_point(url: &str) -> Result<X509Extension> {
    check_url(url)?;
    let uri = der::tlv(tag::ctx(6), url.as_bytes());
    let full_name = der::tlv(tag::ctx_cons(0), &uri);
    let dp_name = der::tlv(tag::ctx_cons(0), &full_name);
    let dp = der::tlv(tag::SEQUENCE, &dp_name);
    raw_extension(oid::CRL_DISTRIBUTION_POINTS, false, &der::tlv(tag::SEQUENCE, &dp))
}

/// A CRL URL: `http://` or `https://` (RFC 5280 §4.2.1.13 expects HTTP or LDAP), printable ASCII.
pub fn check_url(url: &str) -> Result<()> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && url.chars().all(|c| c.is_ascii_graphic()) => Ok(()),
        _ => Err(Error::invalid("CRL URL", url, "expected http://host/path (printable ASCII, no spaces)")),
    }
}

/// Build and sign one certificate.
fn build<T: HasPublic>(
    subject: &X509NameRef,
    public: &PKeyRef<T>,
    validity: Validity,
    mut exts: Vec<X509Extension>,
    authority_key_id: Option<Vec<u8>>,
    issuer_name: &X509NameRef,
    signer: &PKeyRef<Private>,
) -> Result<X509> {
    if validity.not_after < validity.not_before {
        return Err(Error::invalid(
            "validity",
            format!("{} .. {}", time::format(validity.not_before), time::format(validity.not_after)),
            "notAfter is before notBefore",
        ));
    }
    let ski = key_id(public)?;
    exts.push(raw_extension(oid::SUBJECT_KEY_ID, false, &der::tlv(tag::OCTET_STRING, &ski))?);
    // A root's AKI names its own key.
    exts.push(aki_extension(&authority_key_id.unwrap_or(ski))?);

    let mut b = X509::builder().ctx("building a certificate")?;
    b.set_version(2).ctx("building a certificate")?;
    b.set_serial_number(&*Serial::random()?.to_asn1()?).ctx("setting the serial")?;
    b.set_subject_name(subject).ctx("setting the subject")?;
    b.set_issuer_name(issuer_name).ctx("setting the issuer")?;
    b.set_pubkey(public).ctx("setting the public key")?;
    b.set_not_before(&*time::to_asn1(validity.not_before)?).ctx("setting notBefore")?;
    b.set_not_after(&*time::to_asn1(validity.not_after)?).ctx("setting notAfter")?;
    for e in exts {
        b.append_extension(e).ctx("adding an extension")?;
    }
    b.sign(signer, key::digest_for(signer)).ctx("signing a certificate")?;
    Ok(b.build())
}
