//! Infallible wrappers around the host calls the filter uses: failures are logged and turned into
//! `None`/`false`, so a misbehaving host can never make the module panic.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use std::time::{Duration, UNIX_EPOCH};

pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

macro_rules! log_at {
    ($level:ident, $($arg:tt)*) => {
        $crate::wasm::host::log(proxy_wasm::types::LogLevel::$level, &format!($($arg)*))
    };
}
pub(crate) use log_at;

/// Milliseconds since the Unix epoch, from the proxy's clock.
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
}

pub fn set_tick_period(period: Duration) {
    if let Err(status) = hostcalls::set_tick_period(period) {
        log_at!(
            Error,
            "oauth2-gateway: cannot set the tick period: {status:?}"
        );
    }
}

/// A shared-data entry and its CAS version, `None` when absent.
pub fn shared_get(key: &str) -> Option<(Vec<u8>, u32)> {
    match hostcalls::get_shared_data(key) {
        Ok((Some(value), Some(cas))) => Some((value, cas)),
        Ok((None, Some(cas))) => Some((Vec::new(), cas)),
        _ => None,
    }
}

/// Writes a shared-data entry; with `cas`, only if nobody wrote it since. `false`: not written.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    hostcalls::set_shared_data(key, Some(value), cas).is_ok()
}

pub fn request_headers() -> Vec<(String, String)> {
    hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default()
}

pub fn set_request_header(name: &str, value: Option<&str>) {
    if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value) {
        log_at!(
            Warn,
            "oauth2-gateway: cannot set request header {name}: {status:?}"
        );
    }
}

pub fn remove_request_header(name: &str) {
    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
}

pub fn send_response(status: u32, headers: &[(&str, &str)], body: &[u8]) {
    if let Err(e) = hostcalls::send_http_response(status, headers.to_vec(), Some(body)) {
        log_at!(Error, "oauth2-gateway: cannot send the local reply: {e:?}");
    }
}

/// The status of a callout's answer. `headers` is the count the host announced: with none (a
/// reset or failed call) the map is not read at all, since the SDK panics on the host's
/// "bad argument" for a missing map.
pub fn http_call_status(headers: usize) -> Option<u32> {
    if headers == 0 {
        return None;
    }
    hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
}

pub fn http_call_body(size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub fn dispatch(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Option<u32> {
    match hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, vec![], timeout) {
        Ok(token) => Some(token),
        Err(status) => {
            let path = headers
                .iter()
                .find(|(k, _)| *k == ":path")
                .map_or("", |(_, v)| *v);
            log_at!(
                Error,
                "oauth2-gateway: cannot call cluster {cluster:?} for {path}: {status:?} (is the cluster defined?)"
            );
            None
        }
    }
}

pub fn dispatch_get(cluster: &str, authority: &str, path: &str, timeout: Duration) -> Option<u32> {
    let headers = [
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        ("accept", "application/json"),
    ];
    dispatch(cluster, &headers, None, timeout)
}
