//! `proxy_get_property`: the attributes a filter usually reads. Path segments arrive separated by
//! NUL bytes (`request\0path`); values are serialised as Envoy does (strings raw, integers as
//! 8 little-endian bytes, maps as header pairs).

use crate::abi::{Status, pairs};
use crate::state::HostState;
use crate::stream::Phase;

/// Splits a serialised property path.
pub(crate) fn split(path: &[u8]) -> Vec<String> {
    path.split(|b| *b == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// Looks a property up for the active context.
pub(crate) fn get(state: &HostState, path: &[String]) -> Result<Vec<u8>, Status> {
    let joined = path.join(".");
    if let Some(value) = state.set_properties.get(&joined) {
        return Ok(value.clone());
    }
    if let Some(value) = state.plugin.properties.get(&joined) {
        return Ok(value.clone());
    }
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["plugin_name"] => Ok(state.plugin.name.clone().into_bytes()),
        ["plugin_root_id"] => Ok(state.plugin.root_id.clone().into_bytes()),
        ["plugin_vm_id"] => Ok(state.plugin.vm_id.clone().into_bytes()),
        ["request", rest @ ..] => request(state, rest),
        ["response", rest @ ..] => response(state, rest),
        _ => Err(Status::NotFound),
    }
}

fn request(state: &HostState, rest: &[&str]) -> Result<Vec<u8>, Status> {
    let stream = state
        .streams
        .get(&state.contexts.active())
        .ok_or(Status::NotFound)?;
    let headers = stream.visible_request_headers().ok_or(Status::NotFound)?;
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .ok_or(Status::NotFound)
    };
    match rest {
        ["path"] => header(":path"),
        ["url_path"] => {
            let path = headers.get(":path").ok_or(Status::NotFound)?;
            Ok(path.split('?').next().unwrap_or(path).as_bytes().to_vec())
        }
        ["query"] => {
            let path = headers.get(":path").ok_or(Status::NotFound)?;
            Ok(path
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .as_bytes()
                .to_vec())
        }
        ["host"] => header(":authority"),
        ["scheme"] => header(":scheme"),
        ["method"] => header(":method"),
        ["referer"] => header("referer"),
        ["useragent"] => header("user-agent"),
        ["id"] => header("x-request-id"),
        ["protocol"] => Ok(b"HTTP/1.1".to_vec()),
        ["headers"] => Ok(pairs::encode(headers.as_pairs())),
        ["headers", name] => header(name),
        _ => Err(Status::NotFound),
    }
}

fn response(state: &HostState, rest: &[&str]) -> Result<Vec<u8>, Status> {
    let stream = state
        .streams
        .get(&state.contexts.active())
        .ok_or(Status::NotFound)?;
    if stream.phase < Phase::ResponseHeaders {
        return Err(Status::NotFound);
    }
    let headers = &stream.response_headers;
    match rest {
        ["code"] => {
            let code: i64 = headers
                .get(":status")
                .and_then(|s| s.parse().ok())
                .ok_or(Status::NotFound)?;
            Ok(code.to_le_bytes().to_vec())
        }
        ["code_details"] => match &stream.replying_locally {
            Some((details, _)) => Ok(details.clone().into_bytes()),
            None => Ok(b"via_upstream".to_vec()),
        },
        ["headers"] => Ok(pairs::encode(headers.as_pairs())),
        ["headers", name] => headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .ok_or(Status::NotFound),
        _ => Err(Status::NotFound),
    }
}
