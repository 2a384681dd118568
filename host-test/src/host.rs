//! The compiled module: one `Engine`, one `Linker` with every hostcall, one `InstancePre`.
//! Compiling is the slow part, so it happens once; every VM is a cheap new instance.

use crate::abi;
use crate::clock::Clock;
use crate::envoy::{Envoy, EnvoyOptions};
use crate::error::{HostError, Result};
use crate::limits::Limits;
use crate::logs::LogBook;
use crate::state::{Contexts, HostState, Plugin, Shared};
use crate::vm::Vm;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{Deterministic, WasiCtxBuilder};

/// Environment variable naming the filter module; overrides the default path.
pub const FILTER_WASM_ENV: &str = "FILTER_WASM";

/// A compiled proxy-wasm module, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pre: InstancePre<HostState>,
    source: String,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("source", &self.inner.source)
            .finish()
    }
}

/// Where the gateway filter is looked for: `$FILTER_WASM`, else the release build in the
/// harness's target directory, else in the default one.
pub fn filter_wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os(FILTER_WASM_ENV) {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        workspace.join("target/h-host/wasm32-wasip1/release/filter.wasm"),
        workspace.join("target/wasm32-wasip1/release/filter.wasm"),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or(&candidates[0])
        .clone()
}

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.consume_fuel(true);
    Ok(Engine::new(&config)?)
}

impl Host {
    /// Compiles the module at `path` (`.wasm`, or `.wat` text). `$FILTER_WASM`, when set,
    /// overrides `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Host> {
        let path = match std::env::var_os(FILTER_WASM_ENV) {
            Some(env) => PathBuf::from(env),
            None => path.as_ref().to_path_buf(),
        };
        let bytes = std::fs::read(&path).map_err(|source| HostError::ModuleNotFound {
            path: path.clone(),
            source,
        })?;
        Host::from_bytes(&bytes, &path.display().to_string())
    }

    /// The gateway filter (see [`filter_wasm_path`]), compiled once per process and shared.
    pub fn filter() -> Result<Host> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Host>>> = OnceLock::new();
        let path = filter_wasm_path();
        let cache = CACHE.get_or_init(Mutex::default);
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(host) = cache.get(&path) {
            return Ok(host.clone());
        }
        let host = Host::load(&path)?;
        cache.insert(path, host.clone());
        Ok(host)
    }

    /// Compiles a module from bytes: binary wasm or WAT text. `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Host> {
        let engine = engine()?;
        let module = Module::new(&engine, bytes)
            .map_err(|e| HostError::BadModule(format!("{source}: {e:?}")))?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)?;
        abi::add_to_linker(&mut linker)?;
        // Hostcalls of a newer ABI: instantiate anyway, trap if called.
        linker.define_unknown_imports_as_traps(&module)?;
        let pre = linker.instantiate_pre(&module)?;
        Ok(Host {
            inner: Arc::new(Inner {
                engine,
                pre,
                source: source.to_owned(),
            }),
        })
    }

    /// The module's imports, as `module.name`.
    pub fn imports(&self) -> Vec<String> {
        self.inner
            .pre
            .module()
            .imports()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect()
    }

    /// The module's exports.
    pub fn exports(&self) -> Vec<String> {
        self.inner
            .pre
            .module()
            .exports()
            .map(|e| e.name().to_owned())
            .collect()
    }

    /// A simulated Envoy running this module: a main-thread VM plus `options.workers` worker
    /// VMs, each started and configured.
    pub fn envoy(&self, options: EnvoyOptions) -> Result<Envoy> {
        Envoy::start(self, options)
    }

    /// One VM (not started) sharing `shared` with its siblings.
    pub(crate) fn instantiate(
        &self,
        options: &EnvoyOptions,
        shared: &Shared,
        index: usize,
        name: &str,
    ) -> Result<Vm> {
        let limits: Limits = options.limits.clone();
        let stdout = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let seed = randomness(index);
        let wasi = WasiCtxBuilder::new()
            .wall_clock(shared.clock.wasi_wall())
            .monotonic_clock(shared.clock.wasi_monotonic())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .secure_random(Deterministic::new(seed.clone()))
            .insecure_random(Deterministic::new(seed))
            .insecure_random_seed(u128::try_from(index).unwrap_or(0))
            .build_p1();
        let state = HostState {
            name: name.to_owned(),
            index,
            wasi,
            store_limits: StoreLimitsBuilder::new()
                .memory_size(limits.max_memory_bytes)
                .instances(1)
                .memories(1)
                .tables(4)
                .build(),
            plugin: Plugin {
                name: options.plugin_name.clone(),
                root_id: options.root_id.clone(),
                vm_id: options.vm_id.clone(),
                configuration: options.plugin_config.clone(),
                vm_configuration: options.vm_config.clone(),
                clusters: options.clusters.clone(),
                properties: options.properties.clone(),
                log_level: options.log_level,
            },
            logs: LogBook::new(shared.log_seq.clone(), limits.max_log_entries),
            shared: shared.clone(),
            limits,
            contexts: Contexts::default(),
            streams: BTreeMap::new(),
            configuring: false,
            tick: None,
            http_calls: Default::default(),
            call_response: None,
            status: (0, String::new()),
            metric_ids: Default::default(),
            set_properties: BTreeMap::new(),
            foreign: options.foreign_functions.clone(),
            stdout,
            stderr,
            stdio_seen: (0, 0),
            done_called: false,
            unimplemented_calls: BTreeMap::new(),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.store_limits);
        store.set_fuel(options.limits.fuel_per_call)?;
        let instance = self
            .inner
            .pre
            .instantiate(&mut store)
            .map_err(|e| HostError::BadModule(format!("{}: {e:?}", self.inner.source)))?;
        Vm::new(store, instance)
    }
}

/// Fixed pseudo-random bytes per VM, so runs are reproducible.
fn randomness(index: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::try_from(index).unwrap_or(0);
    (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Shared state for a new Envoy.
pub(crate) fn shared_for(options: &EnvoyOptions) -> Shared {
    Shared::new(Clock::at(options.start_time), &options.limits)
}
