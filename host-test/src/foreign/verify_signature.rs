//! Envoy's `verify_signature` foreign function (source/extensions/common/wasm/foreign.cc and
//! ext/verify_signature.proto), natively. Arguments and result are the same protobuf messages;
//! the checks follow Envoy's `Crypto::Utility::verifySignature` on BoringSSL:
//!
//! - hash names `sha1`, `sha224`, `sha256`, `sha384`, `sha512` (any case); others give
//!   `result: false, error: "<hash> is not supported."`;
//! - a public key in DER (SubjectPublicKeyInfo) *or* PEM, not both and not neither
//!   (`BadArgument`); a key that does not parse is also `BadArgument` here;
//! - RSA keys verify PKCS#1 v1.5, EC keys (P-256, P-384) verify ECDSA with a DER signature;
//!   other key types (Ed25519 included: BoringSSL refuses a digest with it) give
//!   `error: "Failed to initialize digest verify."`;
//! - a signature that does not verify gives `error: "Failed to verify digest. Error code: 0"`.

use crate::abi::Status;
use prost::Message;
use sha2::Digest;
use signature::hazmat::PrehashVerifier;
use spki::DecodePublicKey;

/// `envoy.source.extensions.common.wasm.VerifySignatureArguments`.
#[derive(Clone, PartialEq, Message)]
pub struct VerifySignatureArguments {
    #[prost(string, tag = "1")]
    pub hash_function: String,
    /// DER SubjectPublicKeyInfo (exclusive with `public_key_pem`).
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub text: Vec<u8>,
    #[prost(string, tag = "5")]
    pub public_key_pem: String,
}

/// `envoy.source.extensions.common.wasm.VerifySignatureResult`.
#[derive(Clone, PartialEq, Message)]
pub struct VerifySignatureResult {
    #[prost(bool, tag = "1")]
    pub result: bool,
    #[prost(string, tag = "2")]
    pub error: String,
}

enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Rsa(rsa::PublicKey),
    /// Parsed, but not a key type BoringSSL can use with a digest.
    Other,
}

const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

impl TryFrom<spki::SubjectPublicKeyInfoRef<'_>> for PublicKey {
    type Error = spki::Error;

    fn try_from(info: spki::SubjectPublicKeyInfoRef<'_>) -> spki::Result<Self> {
        let oid = info.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            return rsa::PublicKey::try_from(info).map(PublicKey::Rsa);
        }
        if oid == EC_PUBLIC_KEY {
            if let Ok(key) = p256::ecdsa::VerifyingKey::try_from(info.clone()) {
                return Ok(PublicKey::P256(key));
            }
            return p384::ecdsa::VerifyingKey::try_from(info).map(PublicKey::P384);
        }
        Ok(PublicKey::Other)
    }
}

enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn by_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sha1" => Hash::Sha1,
            "sha224" => Hash::Sha224,
            "sha256" => Hash::Sha256,
            "sha384" => Hash::Sha384,
            "sha512" => Hash::Sha512,
            _ => return None,
        })
    }

    fn digest(&self, text: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(text).to_vec(),
            Hash::Sha224 => sha2::Sha224::digest(text).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(text).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(text).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(text).to_vec(),
        }
    }

    fn pkcs1v15(&self) -> rsa::pkcs1v15::Pkcs1v15Sign {
        match self {
            Hash::Sha1 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha1::Sha1>(),
            Hash::Sha224 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha224>(),
            Hash::Sha256 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

fn import_key(args: &VerifySignatureArguments) -> Result<PublicKey, Status> {
    let has_der = !args.public_key.is_empty();
    let has_pem = !args.public_key_pem.is_empty();
    let parsed = match (has_der, has_pem) {
        (true, false) => PublicKey::from_public_key_der(&args.public_key),
        (false, true) => PublicKey::from_public_key_pem(&args.public_key_pem),
        _ => return Err(Status::BadArgument),
    };
    parsed.map_err(|_| Status::BadArgument)
}

/// Verifies; `Ok(())` or the error text Envoy would put in the result.
fn check(args: &VerifySignatureArguments, key: &PublicKey) -> Result<(), String> {
    let Some(hash) = Hash::by_name(&args.hash_function) else {
        return Err(format!("{} is not supported.", args.hash_function));
    };
    let failed = || "Failed to verify digest. Error code: 0".to_owned();
    let digest = hash.digest(&args.text);
    match key {
        PublicKey::Rsa(key) => key
            .verify(hash.pkcs1v15(), &digest, &args.signature)
            .map_err(|_| failed()),
        PublicKey::P256(key) => {
            let signature =
                p256::ecdsa::DerSignature::from_bytes(&args.signature).map_err(|_| failed())?;
            key.verify_prehash(&digest, &signature)
                .map_err(|_| failed())
        }
        PublicKey::P384(key) => {
            let signature =
                p384::ecdsa::DerSignature::from_bytes(&args.signature).map_err(|_| failed())?;
            key.verify_prehash(&digest, &signature)
                .map_err(|_| failed())
        }
        PublicKey::Other => Err("Failed to initialize digest verify.".to_owned()),
    }
}

/// The foreign function: serialised `VerifySignatureArguments` in, serialised
/// `VerifySignatureResult` out.
pub fn verify_signature(arguments: &[u8]) -> Result<Vec<u8>, Status> {
    let args = VerifySignatureArguments::decode(arguments).map_err(|_| Status::BadArgument)?;
    let key = import_key(&args)?;
    let result = match check(&args, &key) {
        Ok(()) => VerifySignatureResult {
            result: true,
            error: String::new(),
        },
        Err(error) => VerifySignatureResult {
            result: false,
            error,
        },
    };
    Ok(result.encode_to_vec())
}
