//! Proxy-wasm shared data: a key-value store shared by every VM of one Envoy (per `vm_id`), with
//! compare-and-swap versions, as proxy-wasm-cpp-host's `SharedData`.

use crate::abi::Status;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    /// vm_id → key → (value, cas).
    data: HashMap<String, HashMap<String, (Vec<u8>, u32)>>,
    next_cas: u32,
    bytes: usize,
}

/// Process-wide shared data. Cloning shares the store.
#[derive(Debug, Clone, Default)]
pub struct SharedData {
    inner: Arc<Mutex<Inner>>,
    max_bytes: usize,
}

impl SharedData {
    pub(crate) fn new(max_bytes: usize) -> Self {
        SharedData {
            inner: Arc::default(),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value and CAS version of `key`, as the guest would read it.
    pub fn get(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        self.lock()
            .data
            .get(vm_id)
            .and_then(|m| m.get(key))
            .cloned()
    }

    /// Writes `key`. A non-zero `cas` must match the current version of an existing key
    /// (`CasMismatch` otherwise); a missing key is always created.
    pub fn set(&self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let map = inner.data.entry(vm_id.to_owned()).or_default();
        let old_size = match map.get(key) {
            Some((old, version)) => {
                if cas != 0 && cas != *version {
                    return Err(Status::CasMismatch);
                }
                key.len() + old.len()
            }
            None => 0,
        };
        let new_total = inner.bytes - old_size + key.len() + value.len();
        if new_total > self.max_bytes {
            return Err(Status::InternalFailure);
        }
        inner.next_cas = inner.next_cas.wrapping_add(1);
        if inner.next_cas == 0 {
            inner.next_cas = 1;
        }
        map.insert(key.to_owned(), (value.to_vec(), inner.next_cas));
        inner.bytes = new_total;
        Ok(())
    }

    /// Every key under `vm_id`, sorted.
    pub fn keys(&self, vm_id: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .data
            .get(vm_id)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap() {
        let data = SharedData::new(1 << 20);
        assert_eq!(data.get("", "k"), None);
        // A CAS on a missing key creates it, as in Envoy.
        data.set("", "k", b"a", 77).unwrap();
        let (value, v1) = data.get("", "k").unwrap();
        assert_eq!(value, b"a");
        assert_ne!(v1, 0);
        data.set("", "k", b"b", v1).unwrap();
        let (_, v2) = data.get("", "k").unwrap();
        assert_ne!(v1, v2);
        assert_eq!(data.set("", "k", b"c", v1), Err(Status::CasMismatch));
        data.set("", "k", b"d", 0).unwrap();
        assert_eq!(data.get("", "k").unwrap().0, b"d");
        assert_eq!(data.get("other-vm", "k"), None, "separate per vm_id");
    }

    #[test]
    fn size_is_capped() {
        let data = SharedData::new(10);
        data.set("", "k", b"12345", 0).unwrap();
        assert_eq!(
            data.set("", "j", b"123456", 0),
            Err(Status::InternalFailure)
        );
        // Replacing counts the old value out.
        data.set("", "k", b"123456789", 0).unwrap();
    }
}
