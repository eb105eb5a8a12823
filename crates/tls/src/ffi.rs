//! The crate's only `unsafe` code: OpenSSL calls the `openssl` crate does not wrap (SPEC O2).
//!
//! * `SSL_CTX_set_msg_callback`: sees every handshake message and alert (CertificateRequest,
//!   type 13, and alerts are what we need to observe).
//! * `SSL_CTX_set_info_callback`: sees handshake state changes, for the debug log.
//! * `X509VerifyResult::from_raw` for a few well-known verification error codes, so that the
//!   alert OpenSSL sends after our own checks fail is the matching one.
//! * Tests only: `EC_GROUP_method_of` and `SSL_ctrl(SSL_CTRL_SET_MAX_PIPELINES)`, to check that
//!   the vendored OpenSSL was built as `.cargo/openssl-configure` says.
//!
//! The callbacks do nothing but turn their raw arguments into safe references and hand them to
//! [`crate::observe`]. They never unwind into C: all work happens in safe code that does not
//! panic on peer data, and `catch_unwind` guards it anyway.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslContextBuilder, SslRef};
use openssl::x509::X509VerifyResult;

type MsgCallback = unsafe extern "C" fn(
    write_p: c_int,
    version: c_int,
    content_type: c_int,
    buf: *const c_void,
    len: usize,
    ssl: *mut openssl_sys::SSL,
    arg: *mut c_void,
);

type InfoCallback = unsafe extern "C" fn(ssl: *const openssl_sys::SSL, kind: c_int, ret: c_int);

extern "C" {
    fn SSL_CTX_set_msg_callback(ctx: *mut openssl_sys::SSL_CTX, cb: Option<MsgCallback>);
    fn SSL_CTX_set_info_callback(ctx: *mut openssl_sys::SSL_CTX, cb: Option<InfoCallback>);
}

unsafe extern "C" fn msg_trampoline(
    write_p: c_int,
    _version: c_int,
    content_type: c_int,
    buf: *const c_void,
    len: usize,
    ssl: *mut openssl_sys::SSL,
    _arg: *mut c_void,
) {
    if ssl.is_null() {
        return;
    }
    // SAFETY: OpenSSL passes the live SSL object of the connection being processed, and `buf`
    // points at `len` readable bytes for the duration of this call (documented contract of
    // SSL_CTX_set_msg_callback). We borrow both only for this call.
    let ssl_ref = unsafe { SslRef::from_ptr(ssl) };
    let data: &[u8] =
        if buf.is_null() || len == 0 { &[] } else { unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) } };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::observe::on_message(ssl_ref, write_p != 0, content_type, data)
    }));
}

unsafe extern "C" fn info_trampoline(ssl: *const openssl_sys::SSL, kind: c_int, ret: c_int) {
    if ssl.is_null() {
        return;
    }
    // SAFETY: as above, OpenSSL passes the live SSL object for the duration of the call; we
    // only read from it.
    let ssl_ref = unsafe { SslRef::from_ptr(ssl.cast_mut()) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::observe::on_info(ssl_ref, kind, ret)));
}

/// Install the message and info callbacks on a context under construction.
pub(crate) fn install_callbacks(builder: &mut SslContextBuilder) {
    // SAFETY: `builder.as_ptr()` is a valid SSL_CTX owned by the builder; the callbacks are
    // plain `extern "C"` functions with the signatures OpenSSL expects and no captured state.
    unsafe {
        SSL_CTX_set_msg_callback(builder.as_ptr(), Some(msg_trampoline));
        SSL_CTX_set_info_callback(builder.as_ptr(), Some(info_trampoline));
    }
}

/// Verification error codes we set after our own checks, so OpenSSL sends the right alert.
#[derive(Debug, Clone, Copy)]
pub(crate) enum VerifyCode {
    Revoked,
    UnableToGetCrl,
    InvalidPurpose,
    HostnameMismatch,
    Application,
}

pub(crate) fn verify_result(code: VerifyCode) -> X509VerifyResult {
    let raw = match code {
        VerifyCode::Revoked => openssl_sys::X509_V_ERR_CERT_REVOKED,
        VerifyCode::UnableToGetCrl => openssl_sys::X509_V_ERR_UNABLE_TO_GET_CRL,
        VerifyCode::InvalidPurpose => openssl_sys::X509_V_ERR_INVALID_PURPOSE,
        VerifyCode::HostnameMismatch => openssl_sys::X509_V_ERR_HOSTNAME_MISMATCH,
        VerifyCode::Application => return X509VerifyResult::APPLICATION_VERIFICATION,
    };
    // SAFETY: every value above is a valid X509_V_ERR_* code, which is what `from_raw` needs
    // for its methods to be thread safe.
    unsafe { X509VerifyResult::from_raw(raw) }
}

/// `SSL_get_negotiated_group`: the NID of the key-exchange group, None for RSA key transport.
pub(crate) fn negotiated_group_nid(ssl: &SslRef) -> Option<openssl::nid::Nid> {
    const SSL_CTRL_GET_NEGOTIATED_GROUP: c_int = 134;
    // SAFETY: `ssl` is a live SSL object; this control only reads the connection's state and
    // takes no pointer argument.
    let r = unsafe { openssl_sys::SSL_ctrl(ssl.as_ptr(), SSL_CTRL_GET_NEGOTIATED_GROUP, 0, std::ptr::null_mut()) };
    if r <= 0 {
        return None;
    }
    c_int::try_from(r).ok().map(openssl::nid::Nid::from_raw)
}

extern "C" {
    fn SSL_get1_supported_ciphers(ssl: *mut openssl_sys::SSL) -> *mut openssl_sys::stack_st_SSL_CIPHER;
}

/// OpenSSL names of the suites a connection would really offer/accept (after version range,
/// security level and build options): `SSL_get1_supported_ciphers`.
pub(crate) fn supported_cipher_names(ssl: &SslRef) -> Vec<String> {
    use foreign_types::ForeignType;
    use openssl::ssl::SslCipher;
    use openssl::stack::Stack;
    // SAFETY: `ssl` is a live SSL object. The function returns a new stack (or NULL) that the
    // caller owns; `Stack::from_ptr` takes that ownership and frees the stack (not the ciphers,
    // which OpenSSL owns: `SslCipher` has no destructor) when dropped.
    let ptr = unsafe { SSL_get1_supported_ciphers(ssl.as_ptr()) };
    if ptr.is_null() {
        return Vec::new();
    }
    let stack: Stack<SslCipher> = unsafe { Stack::from_ptr(ptr) };
    stack.iter().map(|c| c.name().to_string()).collect()
}

/// Checks of the OpenSSL this project builds (`.cargo/openssl-configure`, docs/tls.md), through
/// calls the `openssl` crate does not wrap: they fail when the library was built without the
/// configuration, for example after an `openssl-src` update that no longer runs the script.
#[cfg(test)]
mod build_checks {
    #![allow(clippy::unwrap_used)]
    use std::ffi::{c_int, c_void};

    use foreign_types::ForeignType;
    use openssl::ec::EcGroup;
    use openssl::nid::Nid;
    use openssl::ssl::{Ssl, SslContext, SslMethod};

    extern "C" {
        fn EC_GROUP_method_of(group: *const openssl_sys::EC_GROUP) -> *const c_void;
        fn EC_GFp_mont_method() -> *const c_void;
        fn EC_GFp_nist_method() -> *const c_void;
    }

    /// `SSL_CTRL_SET_MAX_PIPELINES` (ssl.h).
    const SSL_CTRL_SET_MAX_PIPELINES: c_int = 126;

    /// Whether a named curve runs on one of OpenSSL's two generic prime-field methods.
    fn generic(nid: Nid) -> bool {
        let group = EcGroup::from_curve_name(nid).unwrap();
        // SAFETY: a valid group pointer, only read; the two method getters take no arguments and
        // return pointers to static tables.
        unsafe {
            let m = EC_GROUP_method_of(group.as_ptr());
            m == EC_GFp_mont_method() || m == EC_GFp_nist_method()
        }
    }

    #[test]
    fn p384_runs_on_the_dedicated_nistp384_code() {
        assert!(
            !generic(Nid::SECP384R1),
            "P-384 is on generic code: the vendored OpenSSL lacks enable-ec_nistp_64_gcc_128"
        );
        // A curve without dedicated code shows what the failure looks like: the check can fail.
        assert!(generic(Nid::SECP256K1));
    }

    #[test]
    fn connections_are_built_for_one_pipeline() {
        let ctx = SslContext::builder(SslMethod::tls()).unwrap().build();
        let ssl = Ssl::new(&ctx).unwrap();
        // SAFETY: a valid SSL pointer; SSL_CTRL_SET_MAX_PIPELINES only reads `larg`.
        let set =
            |n| unsafe { openssl_sys::SSL_ctrl(ssl.as_ptr(), SSL_CTRL_SET_MAX_PIPELINES, n, std::ptr::null_mut()) };
        assert_eq!(set(1), 1);
        assert_eq!(set(2), 0, "SSL_MAX_PIPELINES is not 1: the vendored OpenSSL was built without the edit");
    }
}
