//! Kamailio 5.6 (Debian `kamailio` + `kamailio-tls-modules`) as a real SIP TLS peer, started
//! with a generated configuration on chosen ports (see shared/peers/kamailio for the recipes).
//!
//! It listens for TLS on `tls_port` and for UDP on `udp_port` (both 127.0.0.1). Requests it
//! receives are answered: OPTIONS with 200, anything else with 404 — or, with
//! [`KamailioOptions::relay_to`], relayed statefully to that SIP URI (e.g. an edge's TLS
//! listener). `tcp_children=1`: two TLS workers crash under concurrent handshakes
//! (kamailio#3791).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::child::{ChildGuard, KitError};
use crate::net::{free_tcp_port, wait_tcp};

/// How to start Kamailio.
#[derive(Debug, Clone)]
pub struct KamailioOptions {
    /// Working directory for the generated files and the log (must exist).
    pub dir: PathBuf,
    /// PEM file with the leaf certificate followed by its intermediates.
    pub cert_chain: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// `method` of the tls module: `TLSv1.2`, `TLSv1.2+`, …
    pub method: String,
    /// OpenSSL cipher list for TLS ≤ 1.2 (None: Kamailio's default).
    pub cipher_list: Option<String>,
    /// Ask TLS clients for a certificate (`verify_certificate`/`require_certificate`).
    pub request_client_cert: bool,
    /// CA file to verify client certificates and, when relaying, the server's.
    pub ca_list: Option<PathBuf>,
    /// Relay every request received to this URI (`sip:127.0.0.1:5061;transport=tls`).
    pub relay_to: Option<String>,
    /// `server_name` (SNI) sent when relaying over TLS.
    pub relay_server_name: Option<String>,
    /// Value of the Server header on replies.
    pub server_header: String,
}

impl KamailioOptions {
    /// A TLS 1.2 server with this chain and key, files under `dir`.
    pub fn new(dir: &Path, cert_chain: &Path, key: &Path) -> KamailioOptions {
        KamailioOptions {
            dir: dir.to_path_buf(),
            cert_chain: cert_chain.to_path_buf(),
            key: key.to_path_buf(),
            method: "TLSv1.2".into(),
            cipher_list: None,
            request_client_cert: false,
            ca_list: None,
            relay_to: None,
            relay_server_name: None,
            server_header: "kamailio (trunkgate testkit)".into(),
        }
    }
}

/// A running Kamailio; stopped on drop.
#[derive(Debug)]
pub struct Kamailio {
    /// Its TLS listener.
    pub tls_addr: SocketAddr,
    /// Its UDP listener.
    pub udp_addr: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
    guard: ChildGuard,
}

fn tls_cfg(o: &KamailioOptions) -> String {
    let mut s = String::from("[server:default]\n");
    let _ = writeln!(s, "method = {}", o.method);
    let yes_no = if o.request_client_cert { "yes" } else { "no" };
    let _ = writeln!(s, "verify_certificate = {yes_no}\nrequire_certificate = {yes_no}");
    let _ = writeln!(s, "certificate = {}\nprivate_key = {}", o.cert_chain.display(), o.key.display());
    if let Some(c) = &o.cipher_list {
        let _ = writeln!(s, "cipher_list = {c}");
    }
    if let Some(ca) = &o.ca_list {
        let _ = writeln!(s, "ca_list = {}", ca.display());
    }
    s.push_str("\n[client:default]\nmethod = TLSv1.2+\n");
    match &o.ca_list {
        Some(ca) => {
            let _ = writeln!(s, "verify_certificate = yes\nrequire_certificate = yes\nca_list = {}", ca.display());
        }
        None => s.push_str("verify_certificate = no\n"),
    }
    if let Some(n) = &o.relay_server_name {
        let _ = writeln!(s, "server_name = {n}");
    }
    s
}

fn main_cfg(o: &KamailioOptions, tls_port: u16, udp_port: u16, tls_file: &Path) -> String {
    let route = match &o.relay_to {
        Some(dest) => format!(
            "    if (is_method(\"ACK\") && !t_check_trans()) exit;\n    $du = \"{dest}\";\n    if (!t_relay()) {{ sl_reply_error(); }}\n    exit;\n"
        ),
        None => "    if (is_method(\"OPTIONS\")) { sl_send_reply(\"200\", \"OK\"); exit; }\n    if (is_method(\"ACK\")) exit;\n    sl_send_reply(\"404\", \"Not here\");\n    exit;\n".to_string(),
    };
    format!(
        "#!KAMAILIO\n\
debug=2\nlog_stderror=yes\nfork=yes\nchildren=1\ntcp_children=1\ndisable_tcp=no\nenable_tls=yes\n\
auto_aliases=no\ndns=no\nrev_dns=no\nuse_dns_cache=off\n\
listen=tls:127.0.0.1:{tls_port}\nlisten=udp:127.0.0.1:{udp_port}\n\
tcp_connection_lifetime=3600\nserver_header=\"Server: {server}\"\n\
loadmodule \"tls.so\"\nloadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"textops.so\"\n\
loadmodule \"maxfwd.so\"\nloadmodule \"pv.so\"\n\
modparam(\"tls\", \"config\", \"{tls}\")\nmodparam(\"tm\", \"fr_timer\", 5000)\n\
request_route {{\n    if (!mf_process_maxfwd_header(\"10\")) {{ sl_send_reply(\"483\", \"Too Many Hops\"); exit; }}\n{route}}}\n",
        server = o.server_header,
        tls = tls_file.display(),
    )
}

impl Kamailio {
    /// Generate the configuration, start Kamailio on free ports and wait (bounded) until its TLS
    /// listener accepts connections.
    pub fn start(o: &KamailioOptions) -> Result<Kamailio, KitError> {
        // A port found free may be taken before Kamailio binds it: try a few times.
        let mut last = None;
        for _ in 0..3 {
            match Kamailio::start_once(o) {
                Ok(k) => return Ok(k),
                Err(e @ KitError::Missing { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(KitError::NotReady { what: "kamailio".into(), waited_ms: 0, detail: String::new() }))
    }

    fn start_once(o: &KamailioOptions) -> Result<Kamailio, KitError> {
        let tls_port = free_tcp_port();
        let mut udp_port = free_tcp_port();
        if udp_port == tls_port {
            udp_port = free_tcp_port();
        }
        let tls_file = o.dir.join(format!("kamailio-tls-{tls_port}.cfg"));
        let cfg_file = o.dir.join(format!("kamailio-{tls_port}.cfg"));
        let log = o.dir.join(format!("kamailio-{tls_port}.log"));
        let run = o.dir.join(format!("kamailio-run-{tls_port}"));
        std::fs::create_dir_all(&run).map_err(KitError::io("creating Kamailio's run directory"))?;
        std::fs::write(&tls_file, tls_cfg(o)).map_err(KitError::io("writing Kamailio's tls config"))?;
        std::fs::write(&cfg_file, main_cfg(o, tls_port, udp_port, &tls_file))
            .map_err(KitError::io("writing Kamailio's config"))?;
        let out = std::fs::File::create(&log).map_err(KitError::io("creating Kamailio's log"))?;
        let err = out.try_clone().map_err(KitError::io("creating Kamailio's log"))?;
        let args: Vec<String> = vec![
            "-f".into(),
            cfg_file.display().to_string(),
            "-DD".into(),
            "-E".into(),
            "-m".into(),
            "64".into(),
            "-M".into(),
            "8".into(),
            "-Y".into(),
            run.display().to_string(),
            "-P".into(),
            run.join("kamailio.pid").display().to_string(),
        ];
        let mut guard = ChildGuard::spawn_limited(
            "/usr/sbin/kamailio",
            "kamailio kamailio-tls-modules",
            &args,
            crate::CHILD_LIFETIME_S,
            Stdio::null(),
            Stdio::from(out),
            Stdio::from(err),
        )?;
        guard.log = Some(log.clone());
        let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
        let udp_addr = SocketAddr::from(([127, 0, 0, 1], udp_port));
        if let Err(e) = wait_tcp(tls_addr, Duration::from_secs(15)) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: String =
                text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            return Err(KitError::NotReady {
                what: "kamailio".into(),
                waited_ms: 15_000,
                detail: format!("{e}; log {}:\n{tail}", log.display()),
            });
        }
        Ok(Kamailio { tls_addr, udp_addr, log, guard })
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        !self.guard.exited()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
