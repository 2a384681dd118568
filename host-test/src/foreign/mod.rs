//! `proxy_call_foreign_function`: host functions a module calls by name. Envoy 1.40 registers
//! `verify_signature` (among others); the harness implements it natively and lets a test run as
//! if it were absent, to exercise the module's fallback.

mod verify_signature;

pub use verify_signature::{VerifySignatureArguments, VerifySignatureResult, verify_signature};

use crate::abi::Status;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A native foreign function: arguments in, result bytes out, or a status for the guest.
pub type ForeignFunction = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, Status> + Send + Sync>;

/// The foreign functions a VM offers, by name.
#[derive(Clone)]
pub struct ForeignFunctions {
    functions: BTreeMap<String, ForeignFunction>,
}

impl Default for ForeignFunctions {
    /// What Envoy 1.40 offers that the harness implements: `verify_signature`.
    fn default() -> Self {
        ForeignFunctions::none().with("verify_signature", verify_signature)
    }
}

impl fmt::Debug for ForeignFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.functions.keys()).finish()
    }
}

impl ForeignFunctions {
    /// No foreign functions at all (an Envoy built without them, or another host).
    pub fn none() -> Self {
        ForeignFunctions {
            functions: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a function.
    pub fn with(
        mut self,
        name: &str,
        function: impl Fn(&[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    ) -> Self {
        self.functions.insert(name.to_owned(), Arc::new(function));
        self
    }

    /// Removes a function: calls to it get `NotFound`, as from a host that lacks it.
    pub fn without(mut self, name: &str) -> Self {
        self.functions.remove(name);
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<ForeignFunction> {
        self.functions.get(name).cloned()
    }
}
