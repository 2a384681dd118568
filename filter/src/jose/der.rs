//! The few DER (X.690) structures the module writes for Envoy's `verify_signature`: a
//! SubjectPublicKeyInfo per key and an ECDSA-Sig-Value per ES256 token. Written here rather than
//! through the `der` crate, which the crates' encoders would pull into the module (≈ 12 KB of code,
//! and `ecdsa`'s `to_der` parses back what it wrote, on every new token).

pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const SEQUENCE: u8 = 0x30;

/// A DER element: tag, definite length (short or long form), content.
pub fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of an unsigned big-endian number: leading zero bytes dropped (DER is minimal),
/// one zero byte put back where the top bit would read as a sign; zero is `02 01 00`.
pub fn uint(big_endian: &[u8]) -> Vec<u8> {
    let magnitude = &big_endian[big_endian.iter().take_while(|b| **b == 0).count()..];
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(magnitude);
    element(INTEGER, &content)
}

/// The ECDSA-Sig-Value (RFC 3279 §2.2.3, `SEQUENCE { r INTEGER, s INTEGER }`) of a JWS ECDSA
/// signature (RFC 7518 §3.4: `r || s`, each `scalar_len` bytes). `None` when the length is not
/// `2 * scalar_len`. The range of r and s is the verifier's to check.
pub fn ecdsa_signature(raw: &[u8], scalar_len: usize) -> Option<Vec<u8>> {
    if raw.len() != 2 * scalar_len {
        return None;
    }
    let (r, s) = raw.split_at(scalar_len);
    Some(element(SEQUENCE, &[uint(r), uint(s)].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_short_and_long_form() {
        assert_eq!(element(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = element(0x04, &[0; 200]);
        assert_eq!(&long[..3], [0x04, 0x81, 200]);
        assert_eq!(long.len(), 203);
        let longer = element(0x04, &[0; 300]);
        assert_eq!(&longer[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn integers_are_minimal_and_unsigned() {
        assert_eq!(uint(&[0, 0, 5]), [0x02, 1, 5]);
        assert_eq!(uint(&[0x80]), [0x02, 2, 0, 0x80]);
        assert_eq!(uint(&[0, 0]), [0x02, 1, 0]);
        assert_eq!(uint(&[]), [0x02, 1, 0]);
    }

    #[test]
    fn ecdsa_signatures_match_the_ecdsa_crate() {
        use p256::ecdsa::{Signature, SigningKey, signature::Signer};
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        // Enough messages that some r or s has a high bit set or a leading zero byte.
        for i in 0..64u32 {
            let sig: Signature = key.sign(&i.to_be_bytes());
            let raw = sig.to_bytes();
            assert_eq!(
                ecdsa_signature(&raw, 32).unwrap(),
                sig.to_der().as_bytes(),
                "message {i}"
            );
        }
        assert!(ecdsa_signature(&[1; 63], 32).is_none());
        assert!(ecdsa_signature(&[1; 65], 32).is_none());
    }
}
