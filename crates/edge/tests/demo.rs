//! `trunkgate demo` end to end: two edges on loopback joined by a byoc-cloud TLS trunk with
//! certificates this test's PKI makes, a real call through both (SPEC T1–T3, T5–T7, T9, S1, S2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_call_completes_over_byoc_cloud_tls() {
    let report = trunkgate_edge::demo::run(std::time::Duration::from_millis(400)).await.unwrap();
    assert!(report.success, "{}", report.text);
    // The trunk negotiated what byoc-cloud allows (T2): TLS 1.2, P-384, an ECDHE-RSA suite first.
    assert!(report.text.contains("TLSv1.2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 group P-384"), "{}", report.text);
    assert!(report.text.contains("verification: Verified; CertificateRequest received: false"), "{}", report.text);
    // The chain went out complete (T5) and the S1 Request-URI went to the trunk.
    assert!(report.text.contains("peer chain: CN=trunkgate demo intermediate"), "{}", report.text);
    assert!(report.text.contains(";tgrp=TG-1;trunk-context=example.com@cloud.trunkgate.test:"), "{}", report.text);
    assert!(report.text.contains("inbound matched by tgrp → 200 completed"), "{}", report.text);
    // Media anchored (M1, M2): SDES SRTP on the trunk legs, plain RTP inside, packets intact.
    assert!(report.text.contains("leg B SRTP AES_CM_128_HMAC_SHA1_80"), "{}", report.text);
    assert!(report.text.contains("leg A SRTP AES_CM_128_HMAC_SHA1_80"), "{}", report.text);
    assert!(report.text.contains(" 0 damaged"), "{}", report.text);
}
