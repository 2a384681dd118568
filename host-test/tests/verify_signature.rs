//! The native `verify_signature` foreign function against OpenSSL-made vectors, with Envoy's
//! argument and result encoding and its error texts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use host_test::{Status, VerifySignatureArguments, VerifySignatureResult, verify_signature};
use prost::Message;
use std::path::Path;

fn vector(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/verify_signature")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn args(hash: &str, key: &str, sig: &str) -> VerifySignatureArguments {
    VerifySignatureArguments {
        hash_function: hash.to_owned(),
        public_key: vector(key),
        signature: vector(sig),
        text: vector("text.txt"),
        public_key_pem: String::new(),
    }
}

fn call(args: &VerifySignatureArguments) -> Result<VerifySignatureResult, Status> {
    let bytes = verify_signature(&args.encode_to_vec())?;
    Ok(VerifySignatureResult::decode(bytes.as_slice()).unwrap())
}

fn ok() -> VerifySignatureResult {
    VerifySignatureResult {
        result: true,
        error: String::new(),
    }
}

fn failed(error: &str) -> VerifySignatureResult {
    VerifySignatureResult {
        result: false,
        error: error.to_owned(),
    }
}

const BAD_SIGNATURE: &str = "Failed to verify digest. Error code: 0";

#[test]
fn valid_signatures_verify() {
    let cases = [
        ("sha256", "rsa2048.pub.der", "rsa2048.sha256.sig"),
        ("SHA384", "rsa2048.pub.der", "rsa2048.sha384.sig"),
        ("sha256", "p256.pub.der", "p256.sha256.sig"),
        ("sha384", "p384.pub.der", "p384.sha384.sig"),
    ];
    for (hash, key, sig) in cases {
        assert_eq!(call(&args(hash, key, sig)), Ok(ok()), "{key} {sig}");
    }
}

#[test]
fn a_pem_key_works_like_its_der() {
    for (pem, sig) in [
        ("rsa2048.pub.pem", "rsa2048.sha256.sig"),
        ("p256.pub.pem", "p256.sha256.sig"),
    ] {
        let mut a = args("sha256", "text.txt", sig);
        a.public_key = Vec::new();
        a.public_key_pem = String::from_utf8(vector(pem)).unwrap();
        assert_eq!(call(&a), Ok(ok()), "{pem}");
    }
}

#[test]
fn a_wrong_text_hash_or_signature_fails_with_envoys_message() {
    let mut tampered = args("sha256", "p256.pub.der", "p256.sha256.sig");
    tampered.text.push(b'x');
    assert_eq!(call(&tampered), Ok(failed(BAD_SIGNATURE)));

    let wrong_hash = args("sha384", "rsa2048.pub.der", "rsa2048.sha256.sig");
    assert_eq!(call(&wrong_hash), Ok(failed(BAD_SIGNATURE)));

    // Raw r‖s (as JWS carries it) is not a DER signature: the caller must convert.
    let mut raw = args("sha256", "p256.pub.der", "p256.sha256.sig");
    raw.signature = vec![1; 64];
    assert_eq!(call(&raw), Ok(failed(BAD_SIGNATURE)));

    let swapped_key = args("sha256", "p384.pub.der", "p256.sha256.sig");
    assert_eq!(call(&swapped_key), Ok(failed(BAD_SIGNATURE)));
}

#[test]
fn unsupported_hashes_and_key_types_fail_like_boringssl() {
    let md5 = args("md5", "rsa2048.pub.der", "rsa2048.sha256.sig");
    assert_eq!(call(&md5), Ok(failed("md5 is not supported.")));

    let ed = args("sha256", "ed25519.pub.der", "p256.sha256.sig");
    assert_eq!(call(&ed), Ok(failed("Failed to initialize digest verify.")));
}

#[test]
fn bad_arguments_are_bad_argument() {
    assert_eq!(
        call_raw(b"\xff\xff\xff"),
        Err(Status::BadArgument),
        "not protobuf"
    );

    let mut neither = args("sha256", "p256.pub.der", "p256.sha256.sig");
    neither.public_key = Vec::new();
    assert_eq!(call(&neither), Err(Status::BadArgument), "no key");

    let mut both = args("sha256", "p256.pub.der", "p256.sha256.sig");
    both.public_key_pem = String::from_utf8(vector("p256.pub.pem")).unwrap();
    assert_eq!(call(&both), Err(Status::BadArgument), "DER and PEM");

    let mut garbage = args("sha256", "p256.pub.der", "p256.sha256.sig");
    garbage.public_key = b"not a key".to_vec();
    assert_eq!(call(&garbage), Err(Status::BadArgument), "unparsable key");
}

fn call_raw(bytes: &[u8]) -> Result<Vec<u8>, Status> {
    verify_signature(bytes)
}

#[test]
fn results_are_encoded_as_envoy_encodes_them() {
    // proto3: `result: true` is field 1 varint 1; an empty error is omitted.
    let bytes =
        verify_signature(&args("sha256", "p256.pub.der", "p256.sha256.sig").encode_to_vec())
            .unwrap();
    assert_eq!(bytes, [0x08, 0x01]);
    // Arguments field numbers: hash 1, public_key 2, signature 3, text 4, public_key_pem 5.
    let encoded = VerifySignatureArguments {
        hash_function: "a".into(),
        public_key: vec![2],
        signature: vec![3],
        text: vec![4],
        public_key_pem: "e".into(),
    }
    .encode_to_vec();
    assert_eq!(
        encoded,
        [
            0x0a, 1, b'a', 0x12, 1, 2, 0x1a, 1, 3, 0x22, 1, 4, 0x2a, 1, b'e'
        ]
    );
}
