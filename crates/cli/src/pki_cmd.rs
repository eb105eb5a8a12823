//! `trunkgate pki …`: the private CA on the command line (SPEC P1–P6, T5, T10, T11, H2).
//! Argument parsing and printing only; the work is done by `trunkgate_pki`. The directory
//! layout and every command are documented in `docs/pki.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Subcommand, ValueEnum};
use trunkgate_pki::{
    inspect, AuthorityOptions, Ca, CsrOptions, CsrProfile, InitOptions, IssueKind, IssueRequest, KeyType, LeafSpec,
    RevocationReason, Rotation, Serial, SignCsrRequest, Status, Validity,
};

#[derive(Debug, clap::Args)]
pub struct PkiArgs {
    /// Act as if it were this time (@UNIX, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC): to plan
    /// rotations, or to test expiry. Default: the system clock.
    #[arg(long, global = true, value_name = "TIME")]
    now: Option<String>,
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create a CA directory: a root, and optionally an intermediate that signs everything.
    Init(InitArgs),
    /// Issue a server, client or device certificate with a new key.
    Issue {
        #[command(subcommand)]
        what: IssueCommand,
    },
    /// Sign a CSR (e.g. from `openssl req -new`) after checking it.
    SignCsr(SignCsrArgs),
    /// Revoke an issued certificate and publish a new CRL in the CA directory.
    Revoke(RevokeArgs),
    /// Make a new CRL (CRL number + nextUpdate) and write it out.
    Crl(CrlArgs),
    /// Rotate the client certificate of a signing authority (current / upcoming).
    Rotate(RotateArgs),
    /// List issued certificates with their status.
    List(ListArgs),
    /// Describe a certificate, chain, CSR, CRL or key (PEM or DER).
    Show {
        /// The file to describe.
        file: PathBuf,
    },
    /// Print the OpenSSL subject hash of a certificate (as `openssl x509 -subject_hash`).
    Hash {
        /// A certificate (PEM or DER; the first one of a chain).
        file: PathBuf,
    },
    /// Convert a certificate, CSR, CRL or key between PEM and DER.
    Export(ExportArgs),
}

/// Key type: rsa2048, rsa3072, rsa4096, p256, p384.
fn key_type(s: &str) -> Result<KeyType, trunkgate_pki::Error> {
    s.parse()
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// The CA directory (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Common name of the root.
    #[arg(long)]
    cn: String,
    /// Key type of the root (and intermediate): rsa2048, rsa3072, rsa4096, p256, p384.
    #[arg(long, value_parser = key_type, default_value = "rsa3072")]
    key: KeyType,
    /// Also make an intermediate CA that signs everything issued.
    #[arg(long)]
    intermediate: bool,
    /// Validity of the CA certificates, in days.
    #[arg(long, default_value_t = 3650)]
    days: u32,
    /// CRL distribution point URL written into every certificate issued (e.g. http://pki.example.com/crl.der).
    #[arg(long, value_name = "URL")]
    crl_url: Option<String>,
    /// Replace an existing trunkgate CA in DIR (its keys are lost).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct OutArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Validity in days (cut at the CA's own expiry).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Key type: rsa2048, rsa3072, rsa4096, p256, p384.
    #[arg(long, value_parser = key_type, default_value = "rsa2048")]
    key: KeyType,
    /// Write PREFIX.key (mode 0600), PREFIX.crt and PREFIX.chain.pem (leaf + intermediates).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    /// Overwrite existing output files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum IssueCommand {
    /// A TLS server certificate: EKU serverAuth only unless --client-auth.
    Server {
        /// Common name: FQDN, or FQDN/anything (its host part also becomes a DNS SAN).
        #[arg(long)]
        cn: String,
        /// A DNS name or IP address for the subjectAltName (repeatable).
        #[arg(long, value_name = "NAME")]
        san: Vec<String>,
        /// A SIP URI for the subjectAltName, e.g. sip:example.com (repeatable, RFC 5922).
        #[arg(long, value_name = "URI")]
        sip_uri: Vec<String>,
        /// Also carry EKU clientAuth (for peers that still demand it).
        #[arg(long)]
        client_auth: bool,
        #[command(flatten)]
        out: OutArgs,
    },
    /// A TLS client certificate: EKU clientAuth.
    Client {
        /// Common name.
        #[arg(long)]
        cn: String,
        /// A DNS name or IP address for the subjectAltName (repeatable).
        #[arg(long, value_name = "NAME")]
        san: Vec<String>,
        /// An e-mail address for the subjectAltName (repeatable).
        #[arg(long)]
        email: Vec<String>,
        #[command(flatten)]
        out: OutArgs,
    },
    /// A device (phone) client certificate; the device identity goes in the CN and the index.
    Device {
        /// The device's MAC address.
        #[arg(long)]
        mac: String,
        /// Common name (default: the MAC as 12 lower-case hex digits; e.g. SEP001122AABBCC for CUCM).
        #[arg(long)]
        cn: Option<String>,
        #[command(flatten)]
        out: OutArgs,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    Server,
    Client,
}

#[derive(Debug, clap::Args)]
struct SignCsrArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// The CSR (PEM or DER).
    #[arg(long)]
    csr: PathBuf,
    /// Certificate profile: server (EKU serverAuth) or client (EKU clientAuth).
    #[arg(long, value_enum)]
    profile: ProfileArg,
    /// Where to write the certificate (PEM).
    #[arg(long)]
    out: PathBuf,
    /// Also write the chain (certificate + intermediates) here.
    #[arg(long, value_name = "FILE")]
    chain_out: Option<PathBuf>,
    /// Server profile: also carry EKU clientAuth.
    #[arg(long)]
    client_auth: bool,
    /// Add a DNS name or IP address to the names the CSR asks for (repeatable).
    #[arg(long, value_name = "NAME")]
    san: Vec<String>,
    /// Validity in days (cut at the CA's own expiry).
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Overwrite existing output files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("which").required(true).args(["serial", "cert"])))]
struct RevokeArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Serial number in hex (as `pki list` or `openssl x509 -serial` shows it).
    #[arg(long)]
    serial: Option<String>,
    /// The certificate file to revoke.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation or privilegeWithdrawn.
    #[arg(long, default_value = "unspecified")]
    reason: String,
}

#[derive(Debug, clap::Args)]
struct CrlArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Also write the CRL here (replaced if it exists).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write --out as DER instead of PEM.
    #[arg(long)]
    der: bool,
    /// Days until nextUpdate.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// The root's CRL (covering the intermediate) instead of the issuing CA's.
    #[arg(long)]
    root: bool,
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// The signing authority (created on first use), e.g. DigiCert or Genesys.
    #[arg(long)]
    authority: String,
    /// Mark a new authority public: only a public authority gets an upcoming certificate.
    #[arg(long)]
    public: bool,
    /// Common name of the authority's certificates (default: the authority name; kept).
    #[arg(long)]
    cn: Option<String>,
    /// Validity of new certificates in days (default 365; kept).
    #[arg(long)]
    days: Option<u32>,
    /// Key type of new certificates (default rsa2048; kept).
    #[arg(long, value_parser = key_type)]
    key: Option<KeyType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatusArg {
    Current,
    Upcoming,
    Valid,
    Expired,
    Revoked,
    NotYetValid,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Only certificates with this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// Only the certificates of this rotation authority.
    #[arg(long)]
    authority: Option<String>,
    /// JSON output (with the PEM chain of current and upcoming rotation certificates).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("format").required(true).args(["der", "pem"])))]
struct ExportArgs {
    /// The file to convert (PEM or DER).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Write DER (one object).
    #[arg(long)]
    der: bool,
    /// Write PEM.
    #[arg(long)]
    pem: bool,
    /// Where to write.
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing output file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: PkiArgs) -> anyhow::Result<ExitCode> {
    let now = match &args.now {
        Some(t) => trunkgate_pki::parse_time(t)?,
        None => trunkgate_pki::unix_now(),
    };
    match args.command {
        PkiCommand::Init(a) => init(a, now),
        PkiCommand::Issue { what } => issue(what, now),
        PkiCommand::SignCsr(a) => sign_csr(a, now),
        PkiCommand::Revoke(a) => revoke(a, now),
        PkiCommand::Crl(a) => crl(a, now),
        PkiCommand::Rotate(a) => rotate(a, now),
        PkiCommand::List(a) => list(a, now),
        PkiCommand::Show { file } => {
            let (format, objects) = inspect::read_file(&file)?;
            print!("{}", inspect::describe(&objects, format, now)?);
            Ok(())
        }
        PkiCommand::Hash { file } => {
            let cert = inspect::first_certificate(&file)?;
            println!("{}", inspect::subject_hash(&cert));
            Ok(())
        }
        PkiCommand::Export(a) => export(a),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn init(a: InitArgs, now: i64) -> anyhow::Result<()> {
    let opts = InitOptions {
        cn: a.cn,
        key: a.key,
        intermediate: a.intermediate,
        days: a.days,
        crl_url: a.crl_url,
        force: a.force,
    };
    let ca = Ca::init(&a.dir, &opts, now)?;
    let v = ca.root().validity()?;
    println!("created CA in {}", a.dir.display());
    println!("  root:         {} ({})", a.dir.join("root.crt").display(), subject(ca.root().cert()));
    println!("  root (DER):   {}", a.dir.join("root.der").display());
    if opts.intermediate {
        println!("  intermediate: {} ({})", a.dir.join("intermediate.crt").display(), subject(ca.issuing().cert()));
    }
    println!("  key type:     {}", opts.key);
    println!(
        "  valid:        {} .. {}",
        trunkgate_pki::format_time(v.not_before),
        trunkgate_pki::format_time(v.not_after)
    );
    println!("  CRL:          {}", a.dir.join("crl.pem").display());
    match &opts.crl_url {
        Some(url) => println!("  CRL URL:      {url} (publish {} there)", a.dir.join("crl.der").display()),
        None => println!("  CRL URL:      none (certificates will carry no CRL distribution point)"),
    }
    Ok(())
}

fn subject(cert: &trunkgate_pki::openssl::x509::X509Ref) -> String {
    trunkgate_pki::subject_text(cert.subject_name())
}

fn issue(what: IssueCommand, now: i64) -> anyhow::Result<()> {
    let (kind, spec, out) = match what {
        IssueCommand::Server { cn, san, sip_uri, client_auth, out } => {
            let mut spec = LeafSpec::server(&cn, Validity::days_from(now, out.days)).client_auth(client_auth);
            spec.hosts = san;
            spec.sip_uris = sip_uri;
            (IssueKind::Server, spec, out)
        }
        IssueCommand::Client { cn, san, email, out } => {
            let mut spec = LeafSpec::client(&cn, Validity::days_from(now, out.days));
            spec.hosts = san;
            spec.emails = email;
            (IssueKind::Client, spec, out)
        }
        IssueCommand::Device { mac, cn, out } => {
            let spec = LeafSpec::client(cn.as_deref().unwrap_or_default(), Validity::days_from(now, out.days));
            (IssueKind::Device { mac }, spec, out)
        }
    };
    let mut ca = Ca::open(&out.dir)?;
    let req = IssueRequest { kind, spec: spec.key(out.key), out_prefix: Some(out.out), force: out.force };
    let r = ca.issue(&req, now)?;
    let e = &r.entry;
    println!("issued {} certificate, serial {}", e.kind.name(), e.serial);
    println!("  subject:  {}", e.subject);
    if let Some(mac) = &e.mac {
        println!("  device:   MAC {mac}");
    }
    let names = inspect::alt_names(&r.issued.cert);
    if !names.is_empty() {
        println!("  names:    {}", names.join(", "));
    }
    println!(
        "  valid:    {} .. {}{}",
        trunkgate_pki::format_time(e.not_before),
        trunkgate_pki::format_time(e.not_after),
        if r.clipped { " (cut at the CA's expiry)" } else { "" }
    );
    if let [key, crt, chain] = r.files.as_slice() {
        println!("  key:      {} (mode 0600)", key.display());
        println!("  cert:     {}", crt.display());
        println!("  chain:    {} (leaf + {} intermediate(s))", chain.display(), r.issued.chain.len());
    }
    if let Some(old) = &r.superseded {
        println!("  replaced: serial {old} (revoked as superseded; new CRL in {})", ca.dir().join("crl.pem").display());
    }
    Ok(())
}

fn sign_csr(a: SignCsrArgs, now: i64) -> anyhow::Result<()> {
    let mut ca = Ca::open(&a.dir)?;
    let req = SignCsrRequest {
        csr_path: a.csr,
        options: CsrOptions {
            profile: match a.profile {
                ProfileArg::Server => CsrProfile::Server,
                ProfileArg::Client => CsrProfile::Client,
            },
            client_auth: a.client_auth,
            validity: Validity::days_from(now, a.days),
            crl_url: None,
            extra_hosts: a.san,
        },
        out: a.out,
        chain_out: a.chain_out,
        force: a.force,
    };
    let (_, e) = ca.sign_csr(&req, now)?;
    println!("signed {} certificate from {}, serial {}", e.kind.name(), req.csr_path.display(), e.serial);
    println!("  subject:  {}", e.subject);
    println!("  valid:    {} .. {}", trunkgate_pki::format_time(e.not_before), trunkgate_pki::format_time(e.not_after));
    println!("  cert:     {}", req.out.display());
    if let Some(c) = &req.chain_out {
        println!("  chain:    {}", c.display());
    }
    Ok(())
}

fn revoke(a: RevokeArgs, now: i64) -> anyhow::Result<()> {
    let reason: RevocationReason = a.reason.parse()?;
    let mut ca = Ca::open(&a.dir)?;
    let serial = match (&a.serial, &a.cert) {
        (Some(s), _) => s.parse::<Serial>()?,
        (None, Some(path)) => ca.serial_of_cert_file(path)?,
        (None, None) => anyhow::bail!("give --serial or --cert"),
    };
    let (e, _) = ca.revoke(&serial, reason, now)?;
    println!("revoked serial {} ({}), reason {reason}", e.serial, e.subject);
    println!(
        "  new CRL:  {} and {} (publish the DER one at the CRL URL)",
        a.dir.join("crl.pem").display(),
        a.dir.join("crl.der").display()
    );
    Ok(())
}

fn crl(a: CrlArgs, now: i64) -> anyhow::Result<()> {
    let mut ca = Ca::open(&a.dir)?;
    let out = a.out.as_deref().map(|p| (p, a.der));
    let crl = ca.crl(a.root, a.days, now, out)?;
    let revoked = crl.get_revoked().map(|s| s.len()).unwrap_or(0);
    let which = if a.root { "root-crl" } else { "crl" };
    println!(
        "new {} CRL: {revoked} revoked, next update {}",
        if a.root { "root" } else { "issuing CA" },
        trunkgate_pki::format_time(now + i64::from(a.days) * trunkgate_pki::DAY)
    );
    println!("  {}", a.dir.join(format!("{which}.pem")).display());
    println!("  {}", a.dir.join(format!("{which}.der")).display());
    if let Some(p) = &a.out {
        println!("  {} ({})", p.display(), if a.der { "DER" } else { "PEM" });
    }
    Ok(())
}

fn rotate(a: RotateArgs, now: i64) -> anyhow::Result<()> {
    let mut ca = Ca::open(&a.dir)?;
    let opts = AuthorityOptions { public: a.public.then_some(true), cn: a.cn, days: a.days, key: a.key };
    let issued = match ca.rotate(&a.authority, &opts, now)? {
        Rotation::IssuedCurrent(e) => ("current", e),
        Rotation::IssuedUpcoming(e) => ("upcoming", e),
        Rotation::Unchanged { reason } => {
            println!("{}: nothing to do: {reason}", a.authority);
            return Ok(());
        }
    };
    let (role, e) = issued;
    println!(
        "{}: issued {role} certificate {} (valid until {})",
        a.authority,
        e.serial,
        trunkgate_pki::format_time(e.not_after)
    );
    if let Some(c) = ca.authority_certs(Some(&a.authority), now)?.into_iter().find(|c| c.entry.serial == e.serial) {
        println!("  cert: {}", c.cert_path.display());
        println!("  key:  {} (mode 0600)", c.key_path.display());
    }
    Ok(())
}

fn status_matches(want: StatusArg, s: Status) -> bool {
    matches!(
        (want, s),
        (StatusArg::Current, Status::Current)
            | (StatusArg::Upcoming, Status::Upcoming)
            | (StatusArg::Valid, Status::Valid | Status::Current | Status::Upcoming)
            | (StatusArg::Expired, Status::Expired)
            | (StatusArg::Revoked, Status::Revoked)
            | (StatusArg::NotYetValid, Status::NotYetValid)
    )
}

fn list(a: ListArgs, now: i64) -> anyhow::Result<()> {
    let ca = Ca::open(&a.dir)?;
    let rows: Vec<_> = ca
        .list(now)
        .into_iter()
        .filter(|(_, s)| match a.status {
            Some(want) => status_matches(want, *s),
            None => true,
        })
        .filter(|(e, _)| a.authority.is_none() || e.authority == a.authority)
        .collect();
    if a.json {
        let chains = ca.authority_certs(a.authority.as_deref(), now)?;
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(e, s)| {
                let mut v = serde_json::json!({
                    "serial": e.serial.to_hex(),
                    "kind": e.kind.name(),
                    "status": s.name(),
                    "subject": e.subject,
                    "notBefore": trunkgate_pki::format_time(e.not_before),
                    "notAfter": trunkgate_pki::format_time(e.not_after),
                    "fromCsr": e.from_csr,
                });
                if let Some(obj) = v.as_object_mut() {
                    if let Some(m) = &e.mac {
                        obj.insert("mac".into(), m.clone().into());
                    }
                    if let Some(auth) = &e.authority {
                        obj.insert("signingAuthority".into(), auth.clone().into());
                    }
                    if let Some(r) = &e.revoked {
                        obj.insert("revokedAt".into(), trunkgate_pki::format_time(r.at).into());
                        obj.insert("reason".into(), r.reason.name().into());
                    }
                    if let Some(c) = chains.iter().find(|c| c.entry.serial == e.serial) {
                        obj.insert("certificate".into(), c.chain_pem.clone().into());
                        obj.insert("keyFile".into(), c.key_path.display().to_string().into());
                    }
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "entities": items, "total": items.len() }))?);
        return Ok(());
    }
    println!("{:<34} {:<9} {:<12} {:<24} SUBJECT", "SERIAL", "KIND", "STATUS", "NOT AFTER");
    for (e, s) in &rows {
        let extra = match (&e.authority, &e.mac) {
            (Some(auth), _) => format!(" [authority {auth}]"),
            (None, Some(mac)) => format!(" [MAC {mac}]"),
            _ => String::new(),
        };
        println!(
            "{:<34} {:<9} {:<12} {:<24} {}{extra}",
            e.serial.to_hex(),
            e.kind.name(),
            s.name(),
            trunkgate_pki::format_time(e.not_after),
            e.subject
        );
    }
    if rows.is_empty() {
        println!("(no certificates)");
    }
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let (_, objects) = inspect::read_file(&a.input)?;
    let format = if a.der { inspect::Format::Der } else { inspect::Format::Pem };
    let bytes = inspect::encode(&objects, format, &a.input)?;
    trunkgate_pki::write_file(&a.out, &bytes, inspect::has_private_key(&objects), a.force)?;
    let kinds: Vec<&str> = objects.iter().map(|o| o.kind()).collect();
    println!("wrote {} ({}: {})", a.out.display(), if a.der { "DER" } else { "PEM" }, kinds.join(", "));
    Ok(())
}
