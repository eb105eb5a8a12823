//! Parse → serialize → re-parse must give the same message, and nothing may panic: the
//! datagram parser, validation, the owned copy and the stream framer all see the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate_sip::{parse_datagram, validate_request, validate_response, Limits, OwnedMessage, Policy, StreamFramer};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(msg) = parse_datagram(data, &limits) {
        let _ = validate_request(&msg, &Policy::default());
        let _ = validate_response(&msg);
        let bytes = msg.to_bytes();
        let again = parse_datagram(&bytes, &limits).expect("serialized message must re-parse");
        assert_eq!(msg.start, again.start);
        assert_eq!(msg.headers, again.headers);
        assert_eq!(msg.body, again.body);
        let owned = OwnedMessage::from_message(&msg).to_bytes();
        let from_owned = parse_datagram(&owned, &limits).expect("owned copy must re-parse");
        assert_eq!(msg.body, from_owned.body);
    }
    let mut framer = StreamFramer::new(limits);
    for chunk in data.chunks(61) {
        framer.push(chunk);
        while let Ok(Some(_)) = framer.next_frame() {}
    }
});
