//! In-dialog work of a call: BYE and hang-ups, in-dialog requests relayed to the other leg
//! (re-INVITE, UPDATE, INFO …) with their responses and media re-offers, ACKs for 2xx, and the
//! 2xx repeated toward a UDP caller until its ACK (RFC 3261 §12–§15, §13.3.1.4).

use std::time::{Duration, Instant};

use trunkgate_sip::transaction::response_for;
use trunkgate_sip::{Method, OwnedMessage, TransactionKey};

use super::call::{copy_body, header_text, reason_phrase, reliability};
use super::leg::{method, status, tag_of};
use super::{media, reason_for, CallState, Core, LegSel, TimerKind, Use};

impl Core {
    pub(crate) fn bye(&mut self, now: Instant, key: &TransactionKey, req: &OwnedMessage, id: u64, from: LegSel) {
        self.respond(now, key, req, 200, "OK", None, &[]);
        match from {
            LegSel::A => self.hangup_b(now, id),
            LegSel::B => self.hangup_a(now, id),
        }
        self.finish(now, id, 200, "completed");
    }

    pub(crate) fn hangup_all(&mut self, now: Instant, id: u64) {
        self.hangup_a(now, id);
        self.hangup_b(now, id);
    }

    pub(crate) fn hangup_b(&mut self, now: Instant, id: u64) {
        self.hangup(now, id, LegSel::B);
    }

    pub(crate) fn hangup_a(&mut self, now: Instant, id: u64) {
        self.hangup(now, id, LegSel::A);
    }

    pub(crate) fn hangup(&mut self, now: Instant, id: u64, sel: LegSel) {
        let agent = self.cfg.edge.name.clone();
        let Some(call) = self.calls.get_mut(&id) else { return };
        let leg = match sel {
            LegSel::A => &mut call.a,
            LegSel::B => &mut call.b,
        };
        if leg.remote_tag.is_none() {
            return;
        }
        let bye = leg.request(Method::Bye, 70, &agent);
        let dest = leg.dest.clone();
        if let Ok(k) = self.table.start_client(now, bye, reliability(&dest), dest) {
            self.uses.insert(k, Use::Bye);
        }
    }

    /// Relays an in-dialog request to the other leg.
    pub(crate) fn relay(&mut self, now: Instant, key: TransactionKey, req: &OwnedMessage, id: u64, from: LegSel) {
        let agent = self.cfg.edge.name.clone();
        let Some(call) = self.calls.get_mut(&id) else { return };
        let m = method(req).cloned().unwrap_or(Method::Info);
        let leg = match from {
            LegSel::A => &mut call.b,
            LegSel::B => &mut call.a,
        };
        let mut out = leg.request(m.clone(), 70, &agent);
        let dest = leg.dest.clone();
        let mut reoffer = None;
        match media::sdp_body(req).filter(|_| matches!(m, Method::Invite | Method::Update)) {
            Some(body) if call.media.is_some() => match Core::media_reoffer(call, from, body) {
                Ok(Some(offer)) => {
                    out.set_body("application/sdp", offer);
                    reoffer = Some(from);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(call_id = %call.a.call_id, "re-offer refused: {e}");
                    let status = e.sip_status();
                    self.respond(now, &key, req, status, reason_for(status), None, &[]);
                    return;
                }
            },
            _ => copy_body(req, &mut out),
        }
        match self.table.start_client(now, out, reliability(&dest), dest) {
            Ok(k) => {
                self.uses.insert(k, Use::Relay { call: id, server: key, reoffer });
            }
            Err(_) => {
                self.respond(now, &key, req, 503, reason_for(503), None, &[]);
            }
        }
    }

    pub(crate) fn relay_response(
        &mut self,
        now: Instant,
        id: u64,
        server: &TransactionKey,
        resp: &OwnedMessage,
        reoffer: Option<LegSel>,
    ) {
        let Some(req) = self.server_request(server) else { return };
        let s = status(resp).unwrap_or(500);
        let mut media_body = None;
        if let (Some(offerer), true, Some(call)) = (reoffer, s >= 200, self.calls.get_mut(&id)) {
            let answer = if (200..300).contains(&s) { Some(resp) } else { None };
            match Core::media_reanswer(call, offerer, answer) {
                Ok(b) => media_body = b,
                Err(e) => tracing::warn!(call_id = %call.a.call_id, "re-answer refused: {e}"),
            }
        }
        let Some(call) = self.calls.get(&id) else { return };
        // The answering leg is the other one; our tag on the requesting leg is what we answer with.
        let call_id = header_text(&req, "Call-ID").unwrap_or_default();
        let (tag, contact) = if call_id == call.a.call_id {
            (call.a.local_tag.clone(), call.a.local.contact())
        } else {
            (call.b.local_tag.clone(), call.b.local.contact())
        };
        let mut r = response_for(&req, s, &reason_phrase(resp), Some(&tag));
        if method(&req).is_some_and(|m| matches!(m, Method::Invite | Method::Update)) && (200..300).contains(&s) {
            r.push("Contact", contact);
        }
        match media_body {
            Some(body) => r.set_body("application/sdp", body),
            None if reoffer.is_none() => copy_body(resp, &mut r),
            None => {}
        }
        r.push("Server", &self.cfg.edge.name);
        let _ = self.table.send_response(now, server, r);
    }

    /// An ACK for a 2xx (a new transaction, RFC 3261 §17.2.3 / RFC 6026): confirms the call and
    /// is passed to the other leg.
    pub(crate) fn on_dialog_ack(&mut self, now: Instant, msg: &trunkgate_sip::Message<'_>) {
        let owned = OwnedMessage::from_message(msg);
        self.on_dialog_ack_owned(now, &owned);
    }

    pub(crate) fn on_dialog_ack_owned(&mut self, now: Instant, ack: &OwnedMessage) {
        let call_id = header_text(ack, "Call-ID").unwrap_or_default();
        let Some(tag) = ack.get("To").and_then(tag_of) else { return };
        let Some(&(id, sel)) = self.dialogs.get(&(call_id, tag)) else { return };
        match sel {
            LegSel::A => {
                if let Some(call) = self.calls.get_mut(&id) {
                    if call.state == CallState::Answered {
                        call.state = CallState::Confirmed;
                    }
                }
                self.ack_b(now, id, Some(ack));
            }
            LegSel::B => {
                let agent = self.cfg.edge.name.clone();
                let Some(call) = self.calls.get_mut(&id) else { return };
                let mut out = call.a.request(Method::Ack, 70, &agent);
                copy_body(ack, &mut out);
                let dest = call.a.dest.clone();
                self.send(dest, out.to_bytes(), None);
            }
        }
    }

    /// Sends (and remembers) the ACK for leg B's 2xx.
    pub(crate) fn ack_b(&mut self, _now: Instant, id: u64, from_a: Option<&OwnedMessage>) {
        let agent = self.cfg.edge.name.clone();
        let Some(call) = self.calls.get_mut(&id) else { return };
        let mut ack = call.b.request(Method::Ack, 70, &agent);
        if let Some(a) = from_a {
            copy_body(a, &mut ack);
        }
        call.b_ack = Some(ack.clone());
        let dest = call.b.dest.clone();
        self.send(dest, ack.to_bytes(), None);
    }

    /// A 2xx retransmission from leg B after its transaction ended: repeat our ACK.
    pub(crate) fn on_stray_response(&mut self, msg: &trunkgate_sip::Message<'_>) {
        let Some(s) = msg.status() else { return };
        if !(200..300).contains(&s) {
            return;
        }
        let call_id = msg.header(trunkgate_sip::HeaderName::CallId).map(|v| String::from_utf8_lossy(v).into_owned());
        let tag = msg.header(trunkgate_sip::HeaderName::From).and_then(tag_of);
        let (Some(call_id), Some(tag)) = (call_id, tag) else { return };
        if let Some(&(id, LegSel::B)) = self.dialogs.get(&(call_id, tag)) {
            if let Some(call) = self.calls.get(&id) {
                if let Some(ack) = &call.b_ack {
                    let (dest, bytes) = (call.b.dest.clone(), ack.to_bytes());
                    self.send(dest, bytes, None);
                }
            }
        }
    }

    /// RFC 3261 §13.3.1.4: the 2xx to an INVITE from an unreliable leg is repeated until the ACK.
    pub(crate) fn retransmit_2xx(&mut self, now: Instant, id: u64, interval_ms: u64) {
        let t2 = self.timers_cfg.t2().as_millis() as u64;
        let limit = self.timers_cfg.t1() * 64;
        let Some(call) = self.calls.get(&id) else { return };
        if call.state != CallState::Answered {
            return;
        }
        if call.answered_at.is_some_and(|t| now.duration_since(t) >= limit) {
            tracing::warn!(call_id = %call.a.call_id, "no ACK for the 2xx: ending the call");
            self.hangup_a(now, id);
            self.hangup_b(now, id);
            self.finish(now, id, 408, "timeout");
            return;
        }
        if let Some(r) = call.final_to_a.clone() {
            let key = call.a_invite.clone();
            let _ = self.table.send_response(now, &key, r);
        }
        let next = (interval_ms * 2).min(t2);
        self.timers
            .insert((now + Duration::from_millis(next), TimerKind::Retransmit2xx { call: id, interval_ms: next }));
    }
}
