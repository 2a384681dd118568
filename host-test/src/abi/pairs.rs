//! The header-map wire format: `count: u32`, then `count` × (`key_len: u32`, `value_len: u32`),
//! then every key and value followed by a NUL byte. Little-endian, as in wasm memory.

use crate::limits::Limits;

/// Serialises pairs the way the host hands them to the guest.
pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + 1 + v.as_ref().len() + 1)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len_u32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parses pairs a guest handed us. `None` when malformed or over the limits; like
/// proxy-wasm-cpp-host, callers then treat the map as empty.
pub fn decode(bytes: &[u8], limits: &Limits) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.len() > limits.max_pairs_bytes {
        return None;
    }
    let count = usize::try_from(read_u32(bytes, 0)?).ok()?;
    if count > limits.max_pairs_count {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4 + i * 8;
        let k = usize::try_from(read_u32(bytes, at)?).ok()?;
        let v = usize::try_from(read_u32(bytes, at + 4)?).ok()?;
        sizes.push((k, v));
    }
    let mut pos = 4 + count * 8;
    let mut take = |len: usize| -> Option<Vec<u8>> {
        let end = pos.checked_add(len)?;
        let value = bytes.get(pos..end)?.to_vec();
        if *bytes.get(end)? != 0 {
            return None;
        }
        pos = end + 1;
        Some(value)
    };
    let mut pairs = Vec::with_capacity(count);
    for (k, v) in sizes {
        let key = take(k)?;
        let value = take(v)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_matches_the_sdk_layout() {
        let pairs = [(":method", "GET"), (":path", "/bytes/1")];
        let bytes = encode(&pairs);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[2u8, 0, 0, 0][..],
            &[7, 0, 0, 0, 3, 0, 0, 0],
            &[5, 0, 0, 0, 8, 0, 0, 0],
            b":method\0GET\0:path\0/bytes/1\0",
        ].concat();
        assert_eq!(bytes, expected);
        let back = decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(back[1], (b":path".to_vec(), b"/bytes/1".to_vec()));
    }

    #[test]
    fn malformed_input_is_refused() {
        let limits = Limits::default();
        assert!(decode(&[], &limits).is_none());
        // Claims one pair, provides no sizes.
        assert!(decode(&[1, 0, 0, 0], &limits).is_none());
        // Sizes point past the end.
        assert!(decode(&[1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, b'a', 0, 0], &limits).is_none());
        // Missing NUL terminator.
        assert!(
            decode(
                &[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, b'a', b'x', b'b', 0],
                &limits
            )
            .is_none()
        );
        // Too many pairs.
        assert!(decode(&u32::MAX.to_le_bytes(), &limits).is_none());
        assert_eq!(decode(&[0, 0, 0, 0], &limits), Some(vec![]));
    }
}
