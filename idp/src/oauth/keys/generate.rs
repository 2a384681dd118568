//! Making keys (aws-lc-rs) and reading stored ones into jsonwebtoken's key types.

use super::{KeyError, SigningAlg};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_kid() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64(&bytes)
}

/// A new key: (kid, PKCS#8 DER, public JWK).
pub(super) fn new_key(alg: SigningAlg) -> Result<(String, Vec<u8>, Value), KeyError> {
    let kid = random_kid();
    let failed = |_| KeyError::Generate(alg.as_str());
    let (der, mut jwk) = match alg {
        SigningAlg::Es256 => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
            let point = key.public_key().as_ref();
            // uncompressed SEC1: 0x04 || x (32) || y (32)
            let (x, y) = match point {
                [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err(KeyError::Generate(alg.as_str())),
            };
            let der = key.to_pkcs8v1().map_err(failed)?;
            (
                der.as_ref().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}),
            )
        }
        SigningAlg::Rs256 => {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(failed)?;
            let public = key.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).map_err(failed)?;
            (der.as_ref().to_vec(), jwk)
        }
        SigningAlg::EdDsa => {
            let key = Ed25519KeyPair::generate().map_err(failed)?;
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())});
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).map_err(failed)?;
            (der.as_ref().to_vec(), jwk)
        }
    };
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    jwk["kid"] = kid.clone().into();
    Ok((kid, der, jwk))
}

/// The signing key for jsonwebtoken from stored PKCS#8 (RSA wants the inner PKCS#1 key).
pub(super) fn encoding_key(
    kid: &str,
    alg: SigningAlg,
    pkcs8: &[u8],
) -> Result<EncodingKey, KeyError> {
    Ok(match alg {
        SigningAlg::Es256 => EncodingKey::from_ec_der(pkcs8),
        SigningAlg::EdDsa => EncodingKey::from_ed_der(pkcs8),
        SigningAlg::Rs256 => {
            let info = pkcs8::PrivateKeyInfo::try_from(pkcs8).map_err(|e| KeyError::Stored {
                kid: kid.to_owned(),
                message: format!("RSA key: {e}"),
            })?;
            EncodingKey::from_rsa_der(info.private_key)
        }
    })
}

pub(super) fn decoding_key(
    kid: &str,
    alg: SigningAlg,
    jwk: &Value,
) -> Result<DecodingKey, KeyError> {
    let stored = |message: String| KeyError::Stored {
        kid: kid.to_owned(),
        message,
    };
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .ok_or_else(|| stored(format!("the JWK lacks {name}")))
    };
    match alg {
        SigningAlg::Es256 => DecodingKey::from_ec_components(field("x")?, field("y")?),
        SigningAlg::Rs256 => DecodingKey::from_rsa_components(field("n")?, field("e")?),
        SigningAlg::EdDsa => DecodingKey::from_ed_components(field("x")?),
    }
    .map_err(|e| stored(e.to_string()))
}
