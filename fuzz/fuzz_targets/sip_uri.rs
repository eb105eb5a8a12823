//! URI, name-addr and Via parsing and URI comparison never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate_sip::Uri;

fuzz_target!(|data: &[u8]| {
    if let Ok(uri) = Uri::parse(data) {
        let _ = uri.equivalent(&uri);
        let _ = uri.tgrp();
        let _ = uri.trunk_context();
        let _ = uri.is_secure();
    }
    let _ = trunkgate_sip::NameAddr::parse(data);
    let _ = trunkgate_sip::Via::parse(data);
});
