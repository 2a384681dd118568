//! A form POST written to the socket by hand, as an OP's HTTP client writes it: the head and a
//! small body in ONE write (node's undici corks the socket around them; Go's net/http and Apache
//! HttpClient buffer both and flush once), or, to test the gateway's timing, the body `delay`
//! after the head. ureq writes the head and the body in two writes with `TCP_NODELAY`, so on a
//! loaded machine Envoy sometimes read a back-channel request's head alone: see
//! [`super::backchannel_split_body`] for what follows on the Wasm module.

use e2e::client;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `POST` of `body` (`content_type`) to `url` (`http://HOST:PORT/PATH`) on a new connection
/// (`connection: close`); with `delay`, the body is written that long after the head. An error
/// when no answer came within `timeout` of the body.
pub(super) fn post(
    url: &str,
    content_type: &str,
    body: &str,
    delay: Option<Duration>,
    timeout: Duration,
) -> Result<client::Response, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http URL: {url}"))?;
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut conn = TcpStream::connect(address).map_err(|e| format!("{url}: {e}"))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: {content_type}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    match delay {
        None => conn
            .write_all(format!("{head}{body}").as_bytes())
            .map_err(|e| e.to_string())?,
        Some(delay) => {
            conn.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
            std::thread::sleep(delay);
            conn.write_all(body.as_bytes())
                .map_err(|e| format!("writing the body: {e}"))?;
        }
    }
    let sent = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if answer.is_empty() => {
                return Err(format!(
                    "no answer {:?} after the body: {e}",
                    sent.elapsed()
                ));
            }
            Err(_) => break,
        }
    }
    parse(&String::from_utf8_lossy(&answer))
}

/// An HTTP/1.1 answer read to the end of the connection.
fn parse(text: &str) -> Result<client::Response, String> {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {text:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(client::Response {
        status,
        headers,
        body: body.to_owned(),
    })
}
