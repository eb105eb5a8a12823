//! Calls: two dialogs tied together (RFC 3261 §12–§15 on each leg). INVITE with provisional
//! responses, ACK, BYE, CANCEL, re-INVITE, UPDATE and INFO are relayed; OPTIONS is answered
//! locally; REFER gets 501. Outbound calls fail over across the trunk's peers on a transport or
//! handshake failure, a 503 or 408, or no answer within `invite_timeout_ms`.

use std::time::{Duration, Instant};

use trunkgate_sip::transaction::response_for;
use trunkgate_sip::{Method, OwnedMessage, Reliability, TransactionKey, Uri};

use super::leg::{
    contact_uri, method, record_routes, request_uri, route_uri, status, tag_of, token, with_host, without_tag, Leg,
};
use super::{media, reason_for, Call, CallRecord, CallState, Core, Dest, LegSel, Origin, Output, TimerKind, Use};
use crate::config::Side;
use crate::routing::{inbound_trunk, outbound_trunk, trunk_request_uri};

/// Headers copied from leg A's INVITE onto leg B (identity and diversion information);
/// everything else is written by the edge.
const COPIED: &[&str] = &["P-Asserted-Identity", "Privacy", "Diversion", "Subject", "User-to-User"];

pub(crate) fn reliability(dest: &Dest) -> Reliability {
    match dest {
        Dest::Udp { .. } => Reliability::Unreliable,
        Dest::InsideTcp(_) | Dest::Peer { .. } | Dest::Conn(_) => Reliability::Reliable,
    }
}

pub(crate) fn copy_body(from: &OwnedMessage, to: &mut OwnedMessage) {
    if !from.body.is_empty() {
        if let Some(ct) = from.get("Content-Type") {
            let ct = String::from_utf8_lossy(ct).into_owned();
            to.set_body(&ct, from.body.clone());
        }
    }
}

pub(crate) fn header_text(msg: &OwnedMessage, name: &str) -> Option<String> {
    msg.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

impl Core {
    /// Answers a server transaction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &OwnedMessage,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
        extra: &[(&str, String)],
    ) -> Option<OwnedMessage> {
        let mut resp = response_for(request, status, reason, to_tag);
        for (n, v) in extra {
            resp.push(n, v);
        }
        resp.push("Server", &self.cfg.edge.name);
        match self.table.send_response(now, key, resp.clone()) {
            Ok(()) => Some(resp),
            Err(e) => {
                tracing::debug!("response {status} not sent: {e}");
                None
            }
        }
    }

    pub(crate) fn on_request(&mut self, now: Instant, key: TransactionKey, req: OwnedMessage) {
        let Some(origin) = self.origins.get(&key).cloned() else { return };
        let m = method(&req).cloned().unwrap_or(Method::Options);
        if m == Method::Cancel {
            let target = self.table.cancel_target(&key);
            let call = target.as_ref().and_then(|t| match self.uses.get(t) {
                Some(Use::AInvite(c)) => Some(*c),
                _ => None,
            });
            let tag = call.and_then(|c| self.calls.get(&c)).map(|c| c.a.local_tag.clone());
            if let Ok(Some(_)) = self.table.answer_cancel(now, &key, tag.as_deref()) {
                if let Some(c) = call {
                    self.cancel_call(now, c);
                }
            }
            return;
        }
        let to_tag = req.get("To").and_then(tag_of);
        if let Some(tag) = to_tag {
            let call_id = header_text(&req, "Call-ID").unwrap_or_default();
            let Some(&(call, sel)) = self.dialogs.get(&(call_id, tag)) else {
                self.respond(now, &key, &req, 481, reason_for(481), None, &[]);
                return;
            };
            match m {
                Method::Bye => self.bye(now, &key, &req, call, sel),
                Method::Refer => {
                    self.respond(now, &key, &req, 501, reason_for(501), None, &[]);
                }
                _ => self.relay(now, key, &req, call, sel),
            }
            return;
        }
        match m {
            Method::Invite => self.new_call(now, key, req, origin),
            Method::Options => {
                let allow = ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO".to_string());
                let accept = ("Accept", "application/sdp".to_string());
                self.respond(now, &key, &req, 200, "OK", Some(&token(6)), &[allow, accept]);
            }
            Method::Refer | Method::Subscribe | Method::Notify | Method::Publish | Method::Message => {
                self.respond(now, &key, &req, 501, reason_for(501), Some(&token(6)), &[]);
            }
            Method::Register => {
                let allow = ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO".to_string());
                self.respond(now, &key, &req, 405, reason_for(405), Some(&token(6)), &[allow]);
            }
            _ => {
                self.respond(now, &key, &req, 501, reason_for(501), Some(&token(6)), &[]);
            }
        }
    }

    fn new_call(&mut self, now: Instant, key: TransactionKey, req: OwnedMessage, origin: Origin) {
        let a_tag = token(6);
        let refuse = |core: &mut Core, status: u16, extra: &[(&str, String)]| {
            core.respond(now, &key, &req, status, reason_for(status), Some(&a_tag), extra);
        };
        if self.draining || self.calls.len() >= self.cfg.edge.max_calls {
            refuse(self, 503, &[("Retry-After", "30".into())]);
            return;
        }
        let _ = self.table.send_trying(now, &key);
        let ruri_text = request_uri(&req).unwrap_or_default().to_string();
        let Ok(ruri) = Uri::parse(ruri_text.as_bytes()) else {
            refuse(self, 400, &[]);
            return;
        };
        let number = ruri
            .user_number()
            .map(|n| String::from_utf8_lossy(&trunkgate_sip::uri::unescape(n)).into_owned())
            .unwrap_or_default();
        let inbound = origin.side == Side::Trunk;
        let routed =
            if inbound { inbound_trunk(&self.cfg.trunks, &ruri) } else { outbound_trunk(&self.cfg.trunks, &ruri) };
        let Some((trunk, matched_by)) = routed else {
            tracing::info!(ruri = %ruri_text, inbound, "no trunk matches the call");
            refuse(self, 404, &[]);
            return;
        };
        let Some(trunk_cfg) = self.cfg.trunks.get(trunk).cloned() else { return };
        if inbound && !trunk_cfg.allowed_subjects.is_empty() {
            let allowed = origin
                .verified_names
                .iter()
                .any(|n| trunk_cfg.allowed_subjects.iter().any(|a| a.eq_ignore_ascii_case(n)));
            if !allowed {
                tracing::warn!(trunk = %trunk_cfg.name, names = ?origin.verified_names, "peer certificate subject not allowed on this trunk (T4)");
                refuse(self, 403, &[]);
                return;
            }
        }
        let max_forwards = req
            .get("Max-Forwards")
            .and_then(|v| trunkgate_sip::scan::parse_u64_max(trunkgate_sip::scan::trim_lws(v), 255))
            .unwrap_or(70) as u8;
        let a_from = req.get("From").map(without_tag).unwrap_or_default();
        let a_to = req.get("To").map(without_tag).unwrap_or_default();
        let a_target = contact_uri(&req).unwrap_or_else(|| ruri_text.clone());
        // As the UAS of leg A, the route set is the INVITE's Record-Route in order (§12.1.1);
        // in-dialog requests go to its first entry (loose routing), else to the Contact.
        let a_routes = record_routes(&req);
        let first_hop = a_routes.first().and_then(|r| route_uri(r)).unwrap_or_else(|| a_target.clone());
        let a_dest =
            if inbound { self.trunk_dest_for_contact(trunk, &first_hop, &origin) } else { origin.reply.clone() };
        let Some(a_local) = (if inbound { self.trunk_local.clone() } else { Some(self.inside_local.clone()) }) else {
            refuse(self, 500, &[]);
            return;
        };
        let a = Leg {
            side: origin.side,
            call_id: header_text(&req, "Call-ID").unwrap_or_default(),
            local_tag: a_tag.clone(),
            remote_tag: req.get("From").and_then(tag_of),
            local_id: a_to.clone(),
            remote_id: a_from.clone(),
            local_cseq: 0,
            remote_target: a_target,
            route_set: a_routes,
            dest: a_dest,
            local: a_local,
        };
        let (b_target, b_dest, b_local, peer) = if inbound {
            let t = self.cfg.inside.target;
            (format!("sip:{number}@{t}"), self.inside_dest.clone(), self.inside_local.clone(), 0)
        } else {
            let Some(peer) = (0..trunk_cfg.peers.len()).find(|&p| self.peer_up(trunk, p)) else {
                tracing::warn!(trunk = %trunk_cfg.name, "every peer of the trunk is down");
                refuse(self, 503, &[("Retry-After", "30".into())]);
                return;
            };
            let (Some((dest, spec)), Some(local)) = (self.peer_dest(trunk, peer), self.trunk_local.clone()) else {
                refuse(self, 500, &[]);
                return;
            };
            (trunk_request_uri(&trunk_cfg, &number, &spec), dest, local, peer)
        };
        // Topology hiding: on a trunk leg the identities carry the edge's name and the peer's,
        // never inside addresses.
        let (b_from, b_to) = match (&b_dest, inbound) {
            (Dest::Peer { host, .. }, false) => (with_host(&a_from, &b_local.host), with_host(&a_to, host)),
            _ => (a_from, a_to),
        };
        let b = Leg {
            side: if inbound { Side::Inside } else { Side::Trunk },
            call_id: format!("{}@trunkgate", token(12)),
            local_tag: token(6),
            remote_tag: None,
            local_id: b_from,
            remote_id: b_to,
            local_cseq: 0,
            remote_target: b_target,
            route_set: Vec::new(),
            dest: b_dest,
            local: b_local,
        };
        let id = self.next_call;
        self.next_call += 1;
        let mut call = Call {
            id,
            inbound,
            trunk,
            matched_by,
            a,
            b,
            a_invite: key.clone(),
            a_request: req,
            b_invite: None,
            number,
            peer,
            attempts: 0,
            state: CallState::Trying,
            cancelled: false,
            answered_at: None,
            final_to_a: None,
            b_ack: None,
            max_forwards: max_forwards.saturating_sub(1),
            media: None,
            relay: None,
            b_offer: None,
            a_answer: None,
        };
        match self.media_offer(&mut call) {
            Ok(offer) => call.b_offer = offer,
            Err(e) => {
                tracing::warn!(call_id = %call.a.call_id, "media offer refused: {e}");
                let status = e.sip_status();
                self.respond(now, &key, &call.a_request, status, reason_for(status), Some(&call.a.local_tag), &[]);
                return;
            }
        }
        self.uses.insert(key, Use::AInvite(id));
        self.dialogs.insert((call.a.call_id.clone(), call.a.local_tag.clone()), (id, LegSel::A));
        self.dialogs.insert((call.b.call_id.clone(), call.b.local_tag.clone()), (id, LegSel::B));
        self.stats.calls += 1;
        if self.send_b_invite(now, &mut call) {
            self.calls.insert(id, call);
        } else {
            self.calls.insert(id, call);
            self.fail_call(now, id, 503, "failed");
        }
    }

    /// Where in-dialog requests to a trunk peer that called us go (RFC 5923 rule of issue 7):
    /// the Contact host when it is a name (verified when connecting); the connection it came on
    /// when its certificate was verified (mutual trunks); otherwise the trunk's first peer.
    fn trunk_dest_for_contact(&self, trunk: usize, contact: &str, origin: &Origin) -> Dest {
        if let Ok(u) = Uri::parse(contact.as_bytes()) {
            if let Some(trunkgate_sip::Host::Domain(d)) = u.host {
                let host = String::from_utf8_lossy(d).into_owned();
                if origin.verified_names.iter().any(|n| n.eq_ignore_ascii_case(&host)) {
                    return origin.reply.clone();
                }
                return Dest::Peer { trunk, host, port: u.port.unwrap_or(5061) };
            }
        }
        if !origin.verified_names.is_empty() {
            return origin.reply.clone();
        }
        if let Some((d, _)) = self.peer_dest(trunk, 0) {
            return d;
        }
        // No name to verify anywhere: address the Contact's IP and let the trunk's profile decide
        // (byoc-cloud refuses IP identities, T7, and the refusal is logged with its reason). The
        // unverified inbound connection is never reused for requests (fail closed).
        let (host, port) = Uri::parse(contact.as_bytes())
            .ok()
            .and_then(|u| u.host.map(|h| (h.to_text(), u.port.unwrap_or(5061))))
            .unwrap_or_else(|| (origin.peer.ip().to_string(), 5061));
        Dest::Peer { trunk, host, port }
    }

    /// Sends (or re-sends, on failover) the INVITE on leg B. False when it could not start.
    fn send_b_invite(&mut self, now: Instant, call: &mut Call) -> bool {
        let mut inv = call.b.request(Method::Invite, call.max_forwards, &self.cfg.edge.name.clone());
        for h in COPIED {
            if let Some(v) = call.a_request.get(h) {
                inv.push(h, v);
            }
        }
        inv.push("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO");
        match &call.b_offer {
            Some(offer) => inv.set_body("application/sdp", offer.clone()),
            None => copy_body(&call.a_request, &mut inv),
        }
        let rel = reliability(&call.b.dest);
        match self.table.start_client(now, inv, rel, call.b.dest.clone()) {
            Ok(bkey) => {
                self.uses.insert(bkey.clone(), Use::BInvite(call.id));
                call.b_invite = Some(bkey);
                call.attempts += 1;
                if !call.inbound {
                    let ms = self.cfg.trunks.get(call.trunk).map_or(32_000, |t| t.invite_timeout_ms);
                    let at = now + Duration::from_millis(ms);
                    self.timers.insert((at, TimerKind::InviteTimeout { call: call.id, attempt: call.attempts }));
                }
                true
            }
            Err(e) => {
                tracing::warn!("INVITE on leg B not started: {e}");
                false
            }
        }
    }

    pub(crate) fn on_provisional(&mut self, now: Instant, key: &TransactionKey, resp: OwnedMessage) {
        let s = status(&resp).unwrap_or(100);
        match self.uses.get(key).cloned() {
            Some(Use::BInvite(id)) => {
                let Some(mut call) = self.calls.remove(&id) else { return };
                if call.b_invite.as_ref() == Some(key) && s > 100 && !call.cancelled {
                    call.b.remote_tag = resp.get("To").and_then(tag_of).or(call.b.remote_tag.take());
                    let mut routes = record_routes(&resp);
                    routes.reverse();
                    if !routes.is_empty() {
                        call.b.route_set = routes;
                    }
                    call.state = CallState::Early;
                    let contact = ("Contact", call.a.local.contact());
                    let mut extra = vec![contact];
                    if let Some(r) = header_text(&resp, "Require") {
                        extra.push(("Require", r));
                    }
                    let req = call.a_request.clone();
                    let reason = reason_phrase(&resp);
                    let mut r = response_for(&req, s, &reason, Some(&call.a.local_tag));
                    for (n, v) in &extra {
                        r.push(n, v);
                    }
                    for rr in record_routes(&req) {
                        r.push("Record-Route", rr);
                    }
                    match self.media_answer(&mut call, &resp) {
                        Ok(Some(body)) => r.set_body("application/sdp", body),
                        Ok(None) if call.media.is_none() => copy_body(&resp, &mut r),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(call_id = %call.a.call_id, "early media refused: {e}"),
                    }
                    r.push("Server", &self.cfg.edge.name);
                    let _ = self.table.send_response(now, &call.a_invite, r);
                }
                self.calls.insert(id, call);
            }
            Some(Use::Relay { call, server, .. }) if s > 100 => {
                self.relay_response(now, call, &server, &resp, None);
            }
            _ => {}
        }
    }

    pub(crate) fn on_final(&mut self, now: Instant, key: &TransactionKey, resp: OwnedMessage) {
        let s = status(&resp).unwrap_or(500);
        match self.uses.get(key).cloned() {
            Some(Use::BInvite(id)) => self.b_final(now, id, key, resp, s),
            Some(Use::Relay { call, server, reoffer }) => self.relay_response(now, call, &server, &resp, reoffer),
            Some(Use::Ping { trunk, peer }) => self.peer_result(trunk, peer, true),
            Some(Use::Abandoned(leg)) if (200..300).contains(&s) => self.hang_up_late_answer(now, *leg, &resp),
            _ => {}
        }
    }

    /// A 2xx from a peer the edge already failed over from: ACK it, then BYE (§13.2.2.4), so that
    /// the peer holds no ghost call.
    fn hang_up_late_answer(&mut self, now: Instant, mut leg: Leg, resp: &OwnedMessage) {
        leg.remote_tag = resp.get("To").and_then(tag_of);
        if let Some(c) = contact_uri(resp) {
            leg.remote_target = c;
        }
        let mut routes = record_routes(resp);
        routes.reverse();
        leg.route_set = routes;
        let agent = self.cfg.edge.name.clone();
        tracing::info!(call_id = %leg.call_id, "late answer from an abandoned peer: ACK and BYE");
        let ack = leg.request(Method::Ack, 70, &agent);
        self.send(leg.dest.clone(), ack.to_bytes(), None);
        let bye = leg.request(Method::Bye, 70, &agent);
        let dest = leg.dest.clone();
        if let Ok(k) = self.table.start_client(now, bye, reliability(&dest), dest) {
            self.uses.insert(k, Use::Bye);
        }
    }

    fn b_final(&mut self, now: Instant, id: u64, key: &TransactionKey, resp: OwnedMessage, s: u16) {
        let Some(mut call) = self.calls.remove(&id) else { return };
        if call.b_invite.as_ref() != Some(key) {
            self.calls.insert(id, call);
            return;
        }
        if !call.inbound && (200..600).contains(&s) {
            self.peer_result(call.trunk, call.peer, true);
        }
        if (200..300).contains(&s) {
            call.b.remote_tag = resp.get("To").and_then(tag_of);
            if let Some(c) = contact_uri(&resp) {
                call.b.remote_target = c;
            }
            // As the UAC of leg B, the route set is the 2xx's Record-Route reversed (§12.1.2).
            let mut routes = record_routes(&resp);
            routes.reverse();
            call.b.route_set = routes;
            if call.cancelled {
                // The answer crossed our CANCEL: acknowledge and hang up leg B.
                self.calls.insert(id, call);
                self.ack_b(now, id, None);
                self.hangup_b(now, id);
                self.finish(now, id, 487, "cancelled");
                return;
            }
            let req = call.a_request.clone();
            let mut r = response_for(&req, s, &reason_phrase(&resp), Some(&call.a.local_tag));
            r.push("Contact", call.a.local.contact());
            for rr in record_routes(&req) {
                r.push("Record-Route", rr);
            }
            r.push("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO");
            r.push("Server", &self.cfg.edge.name);
            match self.media_answer(&mut call, &resp) {
                Ok(Some(body)) => r.set_body("application/sdp", body),
                Ok(None) if call.media.is_none() => copy_body(&resp, &mut r),
                Ok(None) => {}
                Err(e) => {
                    // No acceptable media from B (e.g. no SRTP crypto on a byoc-cloud trunk):
                    // take the answer down and refuse the call with the media error's status.
                    tracing::warn!(call_id = %call.a.call_id, "media answer refused: {e}");
                    let status = e.sip_status();
                    self.calls.insert(id, call);
                    self.ack_b(now, id, None);
                    self.hangup_b(now, id);
                    self.fail_call(now, id, status, "failed");
                    return;
                }
            }
            let _ = self.table.send_response(now, &call.a_invite, r.clone());
            call.final_to_a = Some(r);
            call.state = CallState::Answered;
            call.answered_at = Some(now);
            self.stats.answered += 1;
            if matches!(call.a.dest, Dest::Udp { .. }) {
                let t1 = self.timers_cfg.t1().as_millis() as u64;
                self.timers
                    .insert((now + self.timers_cfg.t1(), TimerKind::Retransmit2xx { call: id, interval_ms: t1 }));
            }
            self.calls.insert(id, call);
            return;
        }
        if call.cancelled {
            self.calls.insert(id, call);
            self.finish(now, id, 487, "cancelled");
            return;
        }
        let failover = !call.inbound && (s == 503 || s == 408 || s == 500);
        self.calls.insert(id, call);
        if failover && self.failover(now, id) {
            return;
        }
        let reason = reason_phrase(&resp);
        self.fail_call_with(now, id, s, &reason, "failed");
    }

    /// Tries the next healthy peer; false when none is left.
    fn failover(&mut self, now: Instant, id: u64) -> bool {
        let Some(mut call) = self.calls.remove(&id) else { return false };
        if let Some(old) = call.b_invite.take() {
            // The abandoned INVITE may still be alive at that peer (no answer in time): CANCEL it
            // (§9.1; held by the transaction until a provisional response arrives). A completed
            // one (503, transport error) cannot be cancelled and needs nothing.
            if let Ok(ck) = self.table.cancel(now, &old) {
                self.uses.insert(ck, Use::Bye);
            }
            self.uses.insert(old, Use::Abandoned(Box::new(call.b.clone())));
        }
        let peers = self.cfg.trunks.get(call.trunk).map_or(0, |t| t.peers.len());
        let next = (call.peer + 1..peers).find(|&p| self.peer_up(call.trunk, p));
        let Some(peer) = next else {
            self.calls.insert(id, call);
            return false;
        };
        let (Some((dest, spec)), Some(trunk)) = (self.peer_dest(call.trunk, peer), self.cfg.trunks.get(call.trunk))
        else {
            self.calls.insert(id, call);
            return false;
        };
        tracing::info!(trunk = %trunk.name, peer = %spec, "failing over to the next peer");
        call.b.remote_target = trunk_request_uri(trunk, &call.number, &spec);
        if let Dest::Peer { host, .. } = &dest {
            call.b.remote_id = with_host(&call.b.remote_id, host);
        }
        call.b.dest = dest;
        call.peer = peer;
        call.b.remote_tag = None;
        let ok = self.send_b_invite(now, &mut call);
        self.calls.insert(id, call);
        ok
    }

    pub(crate) fn on_failure(&mut self, now: Instant, key: &TransactionKey, timeout: bool) {
        match self.uses.get(key).cloned() {
            Some(Use::BInvite(id)) => {
                let Some(call) = self.calls.get(&id) else { return };
                if call.b_invite.as_ref() != Some(key) {
                    return;
                }
                let (inbound, trunk, peer, cancelled) = (call.inbound, call.trunk, call.peer, call.cancelled);
                if cancelled {
                    self.finish(now, id, 487, "cancelled");
                    return;
                }
                if !inbound {
                    self.peer_result(trunk, peer, false);
                    if self.failover(now, id) {
                        return;
                    }
                }
                let (status, result) = if timeout { (408, "timeout") } else { (503, "failed") };
                self.fail_call(now, id, status, result);
            }
            Some(Use::Relay { call, server, reoffer }) => {
                if let (Some(offerer), Some(c)) = (reoffer, self.calls.get_mut(&call)) {
                    let _ = Core::media_reanswer(c, offerer, None);
                }
                if let Some(req) = self.server_request(&server) {
                    self.respond(now, &server, &req, 408, reason_for(408), None, &[]);
                }
            }
            Some(Use::Ping { trunk, peer }) => self.peer_result(trunk, peer, false),
            _ => {}
        }
    }

    pub(crate) fn server_request(&self, key: &TransactionKey) -> Option<OwnedMessage> {
        match self.table.get(key)? {
            trunkgate_sip::Transaction::ServerInvite(t) => Some(t.request().clone()),
            trunkgate_sip::Transaction::ServerNonInvite(t) => Some(t.request().clone()),
            _ => None,
        }
    }

    fn fail_call(&mut self, now: Instant, id: u64, status: u16, result: &'static str) {
        let reason = reason_for(status).to_string();
        self.fail_call_with(now, id, status, &reason, result);
    }

    /// Answers leg A with a final error (503 gets Retry-After) and ends the call.
    fn fail_call_with(&mut self, now: Instant, id: u64, status: u16, reason: &str, result: &'static str) {
        if let Some(call) = self.calls.get(&id) {
            let (key, req, tag) = (call.a_invite.clone(), call.a_request.clone(), call.a.local_tag.clone());
            let extra: Vec<(&str, String)> =
                if status == 503 { vec![("Retry-After", "30".into())] } else { Vec::new() };
            self.respond(now, &key, &req, status, reason, Some(&tag), &extra);
        }
        self.finish(now, id, status, result);
    }

    fn cancel_call(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.cancelled = true;
        if let Some(bkey) = call.b_invite.clone() {
            match self.table.cancel(now, &bkey) {
                Ok(ckey) => {
                    self.uses.insert(ckey, Use::Bye);
                }
                Err(_) => self.finish(now, id, 487, "cancelled"),
            }
        } else {
            self.finish(now, id, 487, "cancelled");
        }
    }

    pub(crate) fn invite_timeout(&mut self, now: Instant, id: u64, attempt: u32) {
        let Some(call) = self.calls.get(&id) else { return };
        if call.attempts != attempt || call.state != CallState::Trying || call.cancelled {
            return;
        }
        let (trunk, peer) = (call.trunk, call.peer);
        self.peer_result(trunk, peer, false);
        if !self.failover(now, id) {
            self.fail_call(now, id, 408, "timeout");
        }
    }

    /// Ends a call: forgets it and writes the call log record.
    pub(crate) fn finish(&mut self, now: Instant, id: u64, status: u16, result: &'static str) {
        let Some(mut call) = self.calls.remove(&id) else { return };
        let media_summary = call.media.as_ref().map(|m| media::summary(m, call.relay.as_ref()));
        if let Some(relay) = call.relay.take() {
            media::stop_relay(relay, call.a.call_id.clone());
        }
        self.dialogs.remove(&(call.a.call_id.clone(), call.a.local_tag.clone()));
        self.dialogs.remove(&(call.b.call_id.clone(), call.b.local_tag.clone()));
        self.timers.retain(|(_, k)| match k {
            TimerKind::Retransmit2xx { call, .. } | TimerKind::InviteTimeout { call, .. } => *call != id,
            TimerKind::Ping { .. } | TimerKind::MediaCheck => true,
        });
        let trunk = self.cfg.trunks.get(call.trunk).map(|t| t.name.clone()).unwrap_or_default();
        let duration = call.answered_at.map_or(Duration::ZERO, |t| now.duration_since(t));
        let trunk_call_id = if call.inbound { call.a.call_id.clone() } else { call.b.call_id.clone() };
        let record = CallRecord {
            call_id: trunk_call_id,
            trunk,
            direction: if call.inbound { "inbound" } else { "outbound" },
            status: if call.answered_at.is_some() { 200 } else { status },
            result,
            duration,
            matched_by: call.matched_by.as_str(),
            media: media_summary,
        };
        tracing::info!(
            call_id = %record.call_id, trunk = %record.trunk, direction = record.direction,
            status = record.status, result = record.result, duration_ms = record.duration.as_millis() as u64,
            matched_by = record.matched_by, "call ended"
        );
        self.out.push_back(Output::CallEnded(record));
    }
}

pub(crate) fn reason_phrase(resp: &OwnedMessage) -> String {
    match &resp.start {
        trunkgate_sip::OwnedStart::Response { reason, .. } => reason.clone(),
        trunkgate_sip::OwnedStart::Request { .. } => String::new(),
    }
}
