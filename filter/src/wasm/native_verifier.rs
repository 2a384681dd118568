//! Envoy's `verify_signature` foreign function (BoringSSL, natively in Envoy) as the core's
//! [`NativeVerifier`]. Probed once per VM; where it is absent (another host, an older Envoy) the
//! core verifies in Wasm with RustCrypto.
//!
//! Arguments and result are the protobuf messages `VerifySignatureArguments` (hash_function = 1,
//! public_key = 2 (DER), signature = 3, text = 4) and `VerifySignatureResult` (result = 1,
//! error = 2) of Envoy's `source/extensions/common/wasm/ext/verify_signature.proto`; the few
//! fields are encoded here directly rather than pulling a protobuf runtime into the module.

use crate::jose::signature::NativeVerifier;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use std::cell::Cell;

const FUNCTION: &str = "verify_signature";

pub struct EnvoyVerifier {
    /// Verifications answered natively since the last `take_calls`.
    calls: Cell<u64>,
}

impl EnvoyVerifier {
    /// `Some` when the host has the function: called with no arguments it must answer
    /// "bad argument" (present) rather than "not found".
    pub fn probe() -> Option<EnvoyVerifier> {
        match hostcalls::call_foreign_function(FUNCTION, Some(&[])) {
            Err(Status::NotFound) => None,
            _ => Some(EnvoyVerifier {
                calls: Cell::new(0),
            }),
        }
    }

    pub fn take_calls(&self) -> u64 {
        self.calls.replace(0)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `VerifySignatureResult.result`, or `None` if the answer is not that message.
fn parse_result(bytes: &[u8]) -> Option<bool> {
    let mut pos = 0;
    let mut result = false;
    while pos < bytes.len() {
        let tag = get_varint(bytes, &mut pos)?;
        match tag & 7 {
            0 => {
                let v = get_varint(bytes, &mut pos)?;
                if tag >> 3 == 1 {
                    result = v != 0;
                }
            }
            2 => {
                let len = usize::try_from(get_varint(bytes, &mut pos)?).ok()?;
                pos = pos.checked_add(len).filter(|p| *p <= bytes.len())?;
            }
            _ => return None,
        }
    }
    Some(result)
}

impl NativeVerifier for EnvoyVerifier {
    fn verify(
        &self,
        hash: &str,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        let mut args = Vec::with_capacity(spki_der.len() + message.len() + signature.len() + 16);
        put_bytes(&mut args, 1, hash.as_bytes());
        put_bytes(&mut args, 2, spki_der);
        put_bytes(&mut args, 3, signature);
        put_bytes(&mut args, 4, message);
        let answer = hostcalls::call_foreign_function(FUNCTION, Some(&args)).ok()?;
        let result = parse_result(&answer.unwrap_or_default())?;
        self.calls.set(self.calls.get() + 1);
        Some(result)
    }
}
