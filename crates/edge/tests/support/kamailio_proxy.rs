//! Kamailio 5.6 as a carrier proxy in front of the edge: TLS toward the edge, UDP toward a UA
//! (sipp). Initial requests are relayed — from TLS to `ua`, from UDP to the edge. With
//! `record_route` (the way carrier and cloud SBC proxies run) they get `record_route()` (double
//! Record-Route across the two transports) and in-dialog requests must carry the route set
//! (`loose_route()`) or are refused 404, ACKs without one dropped; without it in-dialog requests
//! are relayed like initial ones. With `client_cert` it presents its certificate as a TLS client
//! (mutual-TLS trunks, T4). Kamailio has no DNS here (`dns=no`), so a
//! Request-URI host equal to the edge's name is mapped to the edge's address, like the edge's
//! own `connect` table. Started under `timeout` by testkit's `ChildGuard`, killed by PID on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use trunkgate_testkit::ChildGuard;

/// A running proxy.
pub struct KamailioProxy {
    /// Its TLS listener (toward the edge).
    pub tls_addr: SocketAddr,
    /// Its UDP listener (toward the UA).
    pub udp_addr: SocketAddr,
    /// Its log.
    pub log: PathBuf,
    guard: ChildGuard,
}

/// Where the proxy relays.
pub struct ProxyOptions<'a> {
    /// Work directory.
    pub dir: &'a Path,
    /// Its certificate chain and key (PEM).
    pub chain: &'a Path,
    /// Key.
    pub key: &'a Path,
    /// Roots it verifies the edge's chain with.
    pub ca: &'a Path,
    /// The edge's host name (Request-URI / Contact host) and TLS address.
    pub edge_name: &'a str,
    /// The edge's TLS listener.
    pub edge_tls: SocketAddr,
    /// Where initial requests from the edge go (UDP).
    pub ua: SocketAddr,
    /// Present its certificate as a TLS client too (mutual-TLS trunks, T4).
    pub client_cert: bool,
    /// Record-route initial requests (off: in-dialog requests from the UA side go straight to
    /// the edge, those from the edge to the UA).
    pub record_route: bool,
}

impl KamailioProxy {
    /// Writes the configuration and starts Kamailio; waits (bounded) for its TLS listener.
    pub fn start(o: &ProxyOptions<'_>) -> KamailioProxy {
        let tls_port = trunkgate_testkit::free_tcp_port();
        let mut udp_port = trunkgate_testkit::free_udp_port();
        if udp_port == tls_port {
            udp_port = trunkgate_testkit::free_udp_port();
        }
        let tls_cfg = o.dir.join(format!("kamailio-rr-tls-{tls_port}.cfg"));
        let cfg = o.dir.join(format!("kamailio-rr-{tls_port}.cfg"));
        let log = o.dir.join(format!("kamailio-rr-{tls_port}.log"));
        let run = o.dir.join(format!("kamailio-rr-run-{tls_port}"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            &tls_cfg,
            format!(
                "[server:default]\nmethod = TLSv1.2\nverify_certificate = no\nrequire_certificate = no\n\
                 certificate = {chain}\nprivate_key = {key}\n\n\
                 [client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\n\
                 ca_list = {ca}\nserver_name = {name}\n{client_id}",
                client_id = if o.client_cert {
                    format!("certificate = {}\nprivate_key = {}\n", o.chain.display(), o.key.display())
                } else {
                    String::new()
                },
                chain = o.chain.display(),
                key = o.key.display(),
                ca = o.ca.display(),
                name = o.edge_name,
            ),
        )
        .unwrap();
        let edge_uri = format!("sip:{};transport=tls", o.edge_tls);
        let text = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=1
disable_tcp=no
enable_tls=yes
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off
listen=tls:127.0.0.1:{tls_port}
listen=udp:127.0.0.1:{udp_port}
tcp_connection_lifetime=3600
server_header="Server: kamailio record-routing proxy (trunkgate tests)"
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
modparam("tls", "config", "{tls}")
modparam("tm", "fr_timer", 5000)
modparam("rr", "enable_double_rr", 1)
request_route {{
    xlog("L_INFO", "proxy got $rm $ru from $si:$sp over $pr\n");
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{
            route(TARGET);
            if (!t_relay()) {{ sl_reply_error(); }}
            exit;
        }}
{no_route}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{ t_relay(); }}
            exit;
        }}
        xlog("L_WARN", "in-dialog $rm without a route set: refused\n");
        sl_send_reply("404", "No route set");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    {rr}
    if ($pr == "tls") {{ $du = "sip:{ua}"; }} else {{ $du = "{edge_uri}"; }}
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
route[TARGET] {{
    if ($rd == "{edge_name}") {{ $du = "{edge_uri}"; }}
}}
"#,
            tls = tls_cfg.display(),
            ua = o.ua,
            rr = if o.record_route { "record_route();" } else { "" },
            no_route = if o.record_route {
                String::new()
            } else {
                format!(
                    "        if ($pr == \"tls\") {{ $du = \"sip:{ua}\"; }} else {{ $du = \"{edge_uri}\"; }}\n        t_relay();\n        exit;",
                    ua = o.ua
                )
            },
            edge_name = o.edge_name,
        );
        std::fs::write(&cfg, text).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let args: Vec<String> = [
            "-f",
            &cfg.display().to_string(),
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-Y",
            &run.display().to_string(),
            "-P",
            &run.join("kamailio.pid").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut guard = ChildGuard::spawn_limited(
            "/usr/sbin/kamailio",
            "kamailio kamailio-tls-modules",
            &args,
            trunkgate_testkit::CHILD_LIFETIME_S,
            Stdio::null(),
            Stdio::from(out),
            Stdio::from(err),
        )
        .unwrap_or_else(|e| panic!("Kamailio must run (CI installs it): {e}"));
        guard.log = Some(log.clone());
        let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
        let udp_addr = SocketAddr::from(([127, 0, 0, 1], udp_port));
        if let Err(e) = trunkgate_testkit::wait_tcp(tls_addr, Duration::from_secs(15)) {
            panic!("Kamailio proxy not ready: {e}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        KamailioProxy { tls_addr, udp_addr, log, guard }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        !self.guard.exited()
    }
}
