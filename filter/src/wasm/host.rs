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

/// The request's headers as the host serialised them, parsed in place: one host call and no
/// allocation per header (the SDK's `get_map` copies every name and value into its own `String`,
/// and panics on a value that is not UTF-8). Bytes of a value that is not UTF-8 read as `?`:
/// such a value is never a token, and its header is still seen (and removed when it is one the
/// filter sets).
pub struct HeaderMap {
    buf: Vec<u8>,
    /// Start and length of each name and value in `buf`.
    spans: Vec<[u32; 4]>,
}

impl HeaderMap {
    /// Every header, in the host's order, names as the host gives them.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        let text = |start: u32, len: u32| {
            self.buf
                .get(start as usize..(start as usize).saturating_add(len as usize))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("")
        };
        self.spans
            .iter()
            .map(|&[ks, kl, vs, vl]| (text(ks, kl), text(vs, vl)))
            .collect()
    }

    /// Parses the serialised map: count (u32 LE), then name and value lengths (u32 LE each) per
    /// pair, then each name and value followed by a NUL. Anything malformed ends the map there.
    fn parse(mut buf: Vec<u8>) -> HeaderMap {
        let word = |b: &[u8], at: usize| -> Option<usize> {
            let bytes = b.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
        };
        let count = word(&buf, 0).unwrap_or(0).min(buf.len() / 8);
        let mut spans = Vec::with_capacity(count);
        let mut at = 4 + count * 8;
        for n in 0..count {
            let (Some(kl), Some(vl)) = (word(&buf, 4 + n * 8), word(&buf, 8 + n * 8)) else {
                break;
            };
            let ks = at;
            let Some(vs) = ks.checked_add(kl).and_then(|e| e.checked_add(1)) else {
                break;
            };
            let Some(next) = vs.checked_add(vl).and_then(|e| e.checked_add(1)) else {
                break;
            };
            if next > buf.len() || u32::try_from(next).is_err() {
                break;
            }
            for (start, len) in [(ks, kl), (vs, vl)] {
                let field = &mut buf[start..start + len];
                if std::str::from_utf8(field).is_err() {
                    field
                        .iter_mut()
                        .filter(|b| !b.is_ascii())
                        .for_each(|b| *b = b'?');
                }
            }
            spans.push([ks as u32, kl as u32, vs as u32, vl as u32]);
            at = next;
        }
        HeaderMap { buf, spans }
    }
}

pub fn request_headers() -> HeaderMap {
    HeaderMap::parse(raw::header_map_pairs(MapType::HttpRequestHeaders).unwrap_or_default())
}

/// The one host call made without the SDK's wrapper (see [`HeaderMap`]).
#[allow(unsafe_code)]
mod raw {
    use proxy_wasm::types::{MapType, Status};
    use std::ptr::null_mut;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> Status;
    }

    /// The serialised map, `None` when the host has none (or refuses).
    pub fn header_map_pairs(map_type: MapType) -> Option<Vec<u8>> {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a pointer and a length into the two locals. The pointer, when
        // not null, is a block of `size` bytes it obtained from this module's
        // `proxy_on_memory_allocate` (the SDK's: a boxed `[u8]` of exactly that length) and hands
        // over to us, so it is taken back as a `Vec` of that length and capacity, as the SDK's
        // own `get_map` does.
        unsafe {
            match proxy_get_header_map_pairs(map_type, &mut data, &mut size) {
                Status::Ok if !data.is_null() => Some(Vec::from_raw_parts(data, size, size)),
                _ => None,
            }
        }
    }
}

pub fn set_request_header(name: &str, value: Option<&str>) {
    if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value) {
        log_at!(
            Warn,
            "oauth2-gateway: cannot set request header {name}: {status:?}"
        );
    }
}

/// Adds a request header (another value beside any of the same name).
pub fn add_request_header(name: &str, value: &str) {
    if let Err(status) = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value) {
        log_at!(
            Warn,
            "oauth2-gateway: cannot add request header {name}: {status:?}"
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

/// Makes `context_id` the context the next calls act on (a paused stream of this VM, woken from
/// another context); whether the host took it (the stream may have ended).
pub fn set_effective_context(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

/// Lets a paused request go on upstream.
pub fn resume_request() {
    if let Err(status) = hostcalls::resume_http_request() {
        log_at!(
            Warn,
            "oauth2-gateway: cannot resume the request: {status:?}"
        );
    }
}

/// The request body Envoy has buffered for this stream (`size` bytes).
pub fn request_body(size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
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
