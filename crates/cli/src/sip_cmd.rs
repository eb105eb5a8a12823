//! `trunkgate sip …`: look at SIP messages and URIs the way the edge reads them.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Map, Value};
use trunkgate_sip::{
    disposition, looks_like_request, parse_datagram, parse_stream_message, validate_request, validate_response,
    Disposition, Host, Limits, Message, ParseError, Policy, StartLine, Uri,
};

#[derive(Debug, clap::Args)]
pub struct SipArgs {
    #[command(subcommand)]
    command: SipCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SipCommand {
    /// Parse one SIP message and print it as JSON.
    ///
    /// Prints the start line, every header in order (name as sent, canonical name, value), the
    /// Request-URI broken into scheme, user, user parameters (RFC 4904 tgrp/trunk-context),
    /// host, port and parameters, and the result of the checks a receiving element makes
    /// (RFC 3261 §8.2, RFC 4475). Exit status 0 when the message would be processed; 1 when it
    /// is malformed, with the error and the answer it gets (a status such as 400, 416, 420,
    /// 505, or "drop").
    ///
    /// Examples:
    ///   trunkgate sip parse invite.sip
    ///   printf 'OPTIONS sip:a@b SIP/2.0\r\n...' | trunkgate sip parse --datagram -
    Parse {
        /// The message file, or `-` for standard input.
        #[arg(default_value = "-")]
        file: String,
        /// Read the input as one UDP datagram: the body ends at Content-Length (or the end of
        /// the datagram) and trailing octets are ignored (RFC 4475 §3.1.1.8). Without it the
        /// input is one message from a stream (TCP/TLS), which must hold exactly the
        /// Content-Length body.
        #[arg(long)]
        datagram: bool,
        /// Check as a forwarding element (proxy/B2BUA): Max-Forwards 0 is answered with 483.
        #[arg(long)]
        forwarding: bool,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = 65536)]
        max_size: usize,
    },
    /// Parse one URI (sip, sips, tel, or any other scheme) and print its parts as JSON.
    ///
    /// Example:
    ///   trunkgate sip uri 'sip:+13175551212;tgrp=TG-1;trunk-context=example.com@lb01.voice.use1.pure.cloud:5061;transport=tls'
    Uri {
        /// The URI.
        uri: String,
    },
}

pub fn run(args: SipArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SipCommand::Parse { file, datagram, forwarding, max_size } => parse(&file, datagram, forwarding, max_size),
        SipCommand::Uri { uri } => match Uri::parse(uri.as_bytes()) {
            Ok(u) => {
                print_json(&uri_json(&u))?;
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                print_json(&json!({ "error": e.to_string() }))?;
                Ok(ExitCode::from(1))
            }
        },
    }
}

fn read_input(file: &str, max: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // Read at most one byte more than the limit, so an oversized input is reported, not buffered.
    let limit = (max as u64).saturating_add(1);
    if file == "-" {
        std::io::stdin().take(limit).read_to_end(&mut buf).context("reading standard input")?;
    } else {
        std::fs::File::open(file)
            .with_context(|| format!("cannot open {file}"))?
            .take(limit)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {file}"))?;
    }
    Ok(buf)
}

fn parse(file: &str, datagram: bool, forwarding: bool, max_size: usize) -> anyhow::Result<ExitCode> {
    let raw = read_input(file, max_size)?;
    let limits = Limits { max_message_size: max_size, ..Limits::default() };
    let policy = Policy { forwards: forwarding, ..Policy::default() };
    let parsed = if datagram { parse_datagram(&raw, &limits) } else { parse_stream(&raw, &limits) };
    let msg = match parsed {
        Ok(m) => m,
        Err(e) => {
            let d = disposition(&e, looks_like_request(&raw), &policy.accept_header());
            print_json(&json!({ "valid": false, "error": e.to_string(), "answer": disposition_json(&d) }))?;
            return Ok(ExitCode::from(1));
        }
    };
    let mut out = message_json(&msg);
    let check = if msg.is_request() {
        validate_request(&msg, &policy).map(|_| ())
    } else {
        validate_response(&msg).map(|_| ())
    };
    let code = match check {
        Ok(()) => {
            out.insert("valid".into(), Value::Bool(true));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let d = disposition(&e, msg.is_request(), &policy.accept_header());
            out.insert("valid".into(), Value::Bool(false));
            out.insert("error".into(), Value::String(e.to_string()));
            out.insert("answer".into(), disposition_json(&d));
            ExitCode::from(1)
        }
    };
    print_json(&Value::Object(out))?;
    Ok(code)
}

/// One stream message: the input must be exactly one framed message (stray CRLFs before it are
/// skipped, as on a connection).
fn parse_stream<'a>(raw: &'a [u8], limits: &Limits) -> Result<Message<'a>, ParseError> {
    let skip = raw.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(raw.len());
    let rest = raw.get(skip..).unwrap_or_default();
    match trunkgate_sip::framing::frame_len(rest, limits)? {
        Some(len) => {
            let msg = parse_stream_message(rest.get(..len).unwrap_or_default(), limits)?;
            Ok(msg)
        }
        None => {
            // Incomplete on a stream means "wait for more"; at end of input it is a truncated message.
            let head = trunkgate_sip::parse_head(rest, limits)?;
            let declared = head.content_length.unwrap_or(0);
            Err(ParseError::ContentLengthExceedsBody {
                declared,
                available: rest.len().saturating_sub(head.body_start),
            })
        }
    }
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn disposition_json(d: &Disposition) -> Value {
    match d {
        Disposition::Drop => Value::String("drop".into()),
        Disposition::Respond { status, reason, extra_header } => {
            let mut m = json!({ "status": status, "reason": reason });
            if let (Some((name, value)), Some(obj)) = (extra_header, m.as_object_mut()) {
                obj.insert("header".into(), json!({ "name": name, "value": value }));
            }
            m
        }
    }
}

fn message_json(msg: &Message<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    match &msg.start {
        StartLine::Request { method, uri, version } => {
            out.insert("kind".into(), "request".into());
            out.insert("method".into(), method.as_str().into());
            out.insert(
                "request_uri".into(),
                match Uri::parse(uri) {
                    Ok(u) => uri_json(&u),
                    Err(e) => json!({ "raw": text(uri), "error": e.to_string() }),
                },
            );
            out.insert("version".into(), text(version));
        }
        StartLine::Response { version, status, reason } => {
            out.insert("kind".into(), "response".into());
            out.insert("version".into(), text(version));
            out.insert("status".into(), (*status).into());
            out.insert("reason".into(), text(reason));
        }
    }
    let headers: Vec<Value> = msg
        .headers
        .iter()
        .map(|h| {
            let mut m = json!({ "name": text(h.raw_name), "value": text(&trunkgate_sip::message::unfold(h.value)) });
            if let (false, Some(obj)) = (h.name.as_str().is_empty(), m.as_object_mut()) {
                obj.insert("canonical".into(), h.name.as_str().into());
            }
            m
        })
        .collect();
    out.insert("headers".into(), Value::Array(headers));
    out.insert("body_length".into(), msg.body.len().into());
    if !msg.body.is_empty() {
        out.insert("body".into(), text(msg.body));
    }
    out
}

fn uri_json(u: &Uri<'_>) -> Value {
    let mut m = Map::new();
    m.insert("raw".into(), text(u.raw));
    m.insert("scheme".into(), text(u.scheme_raw));
    if let Some(user) = u.user_number() {
        m.insert("user".into(), text(user));
    }
    let user_params: Map<String, Value> = u
        .user_params()
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.map_or(Value::Null, text)))
        .collect();
    if !user_params.is_empty() {
        m.insert("user_params".into(), Value::Object(user_params));
    }
    if let Some(p) = u.password {
        m.insert("password".into(), text(p));
    }
    if let Some(h) = u.host {
        m.insert("host".into(), Value::String(h.to_text()));
        let kind = match h {
            Host::Domain(_) => "domain",
            Host::V4(_) => "ipv4",
            Host::V6(_) => "ipv6",
        };
        m.insert("host_kind".into(), kind.into());
    }
    if let Some(p) = u.port {
        m.insert("port".into(), p.into());
    }
    let params: Map<String, Value> = u
        .params()
        .iter()
        .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.map_or(Value::Null, text)))
        .collect();
    m.insert("params".into(), Value::Object(params));
    if let Some(h) = u.headers {
        m.insert("headers".into(), text(h));
    }
    m.insert("secure".into(), u.is_secure().into());
    Value::Object(m)
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v).context("encoding JSON")?);
    Ok(())
}
