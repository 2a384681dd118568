//! Errors of the harness. A guest trap or a runaway guest is an error, so a test that hits one
//! fails with the guest's own last words.

use std::path::PathBuf;

pub type Result<T, E = HostError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "cannot read the proxy-wasm module at {path}: {source}\n\
         Build the filter with:\n    \
         CARGO_TARGET_DIR=target/h-host cargo build -p filter --release --target wasm32-wasip1\n\
         or point FILTER_WASM at a module."
    )]
    ModuleNotFound {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the module is not a usable proxy-wasm module: {0}")]
    BadModule(String),

    #[error("wasmtime: {0}")]
    Wasmtime(String),

    #[error("the guest trapped in {callback}: {trap}{}", said(.guest_said))]
    Trap {
        callback: String,
        trap: String,
        /// The guest's last error-level words (its panic message, usually).
        guest_said: Option<String>,
    },

    #[error(
        "the guest used up its fuel ({fuel} units) in {callback}: runaway guest{}",
        said(.guest_said)
    )]
    OutOfFuel {
        callback: String,
        fuel: u64,
        guest_said: Option<String>,
    },

    #[error("the VM failed earlier and accepts no more calls: {0}")]
    VmFailed(String),

    #[error("{0}")]
    Usage(String),
}

fn said(said: &Option<String>) -> String {
    match said {
        Some(s) => format!("\nthe guest said: {s}"),
        None => String::new(),
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(e: wasmtime::Error) -> Self {
        HostError::Wasmtime(format!("{e:?}"))
    }
}
