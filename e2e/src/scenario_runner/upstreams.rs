//! The fake services of one scenario on Envoy: one HTTP server per cluster the filter calls,
//! answering what the scenario says and counting the calls, plus the echo service behind the route.

use super::*;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the fake services know and saw.
struct Shared {
    routes: BTreeMap<String, BTreeMap<String, ResponseSpec>>,
    keys: SigningKeys,
    /// `"cluster METHOD /path"` → calls received (the filter's own calls).
    calls: BTreeMap<String, usize>,
    /// Request tag → the headers the echo service received with it.
    forwarded: BTreeMap<String, Vec<(String, String)>>,
}

/// The fake upstreams of one scenario: one HTTP server per cluster plus the echo service, on a
/// tokio runtime of their own, all stopped when this is dropped.
pub struct FakeUpstreams {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Mutex<Shared>>,
    /// Cluster name → loopback port.
    pub ports: BTreeMap<String, u16>,
}

impl Drop for FakeUpstreams {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn fake_service(
    State((shared, cluster)): State<(Arc<Mutex<Shared>>, String)>,
    request: Request,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let canned = {
        let mut s = lock(&shared);
        *s.calls
            .entry(call_key(&cluster, &method, &path))
            .or_default() += 1;
        match s
            .routes
            .get(&cluster)
            .and_then(|r| route(r, &method, &path))
        {
            None => Err(None),
            Some(spec) if spec.hang => Err(Some(())),
            Some(spec) => Ok(spec.render(&s.keys, unix_now())),
        }
    };
    match canned {
        Err(None) => plain(StatusCode::NOT_FOUND, "no such route in the scenario"),
        Err(Some(())) => {
            tokio::time::sleep(HANG_FOR).await;
            plain(StatusCode::GATEWAY_TIMEOUT, "hung")
        }
        Ok(Err(e)) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Ok(Ok(canned)) => {
            let mut response = Response::new(Body::from(canned.body));
            *response.status_mut() =
                StatusCode::from_u16(canned.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (k, v) in canned.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    response.headers_mut().append(k, v);
                }
            }
            response
        }
    }
}

/// Records the headers of each request it receives whole: a request whose body never arrives
/// (the stream reset when the filter answered it locally) was not forwarded. (The Wasm module lets
/// a back-channel logout request's headers go on before it answers from the body: Envoy hands a
/// proxy-wasm filter the body only then.)
async fn echo_service(State(shared): State<Arc<Mutex<Shared>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if axum::body::to_bytes(body, 1 << 20).await.is_err() {
        return plain(StatusCode::BAD_REQUEST, "incomplete");
    }
    let request = Request::from_parts(parts, Body::empty());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(tag) = request
        .headers()
        .get(REQUEST_TAG)
        .and_then(|v| v.to_str().ok())
    {
        lock(&shared).forwarded.insert(tag.to_owned(), headers);
    }
    plain(StatusCode::OK, "echo")
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = status;
    response
}

impl FakeUpstreams {
    /// Starts a server for every cluster of the scenario (and `resource-server`, which the
    /// format always has), plus the echo service.
    pub fn start(scenario: &Scenario) -> Result<FakeUpstreams, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let shared = Arc::new(Mutex::new(Shared {
            routes: scenario.upstreams.clone(),
            keys: scenario.signing_keys()?,
            calls: BTreeMap::new(),
            forwarded: BTreeMap::new(),
        }));
        let mut clusters: Vec<String> = scenario.upstreams.keys().cloned().collect();
        if !clusters.iter().any(|c| c == "resource-server") {
            clusters.push("resource-server".to_owned());
        }
        let mut ports = BTreeMap::new();
        for cluster in clusters.into_iter().chain([ECHO_CLUSTER.to_owned()]) {
            let router = if cluster == ECHO_CLUSTER {
                Router::new()
                    .fallback(echo_service)
                    .with_state(shared.clone())
            } else {
                Router::new()
                    .fallback(fake_service)
                    .with_state((shared.clone(), cluster.clone()))
            };
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .map_err(|e| format!("{cluster}: bind: {e}"))?;
            let port = listener
                .local_addr()
                .map_err(|e| format!("{cluster}: {e}"))?
                .port();
            runtime.spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            ports.insert(cluster, port);
        }
        Ok(FakeUpstreams {
            runtime: Some(runtime),
            shared,
            ports,
        })
    }

    /// Replaces a route's answer (a scenario's `upstream` step).
    pub fn set_route(&self, cluster: &str, route: &str, response: ResponseSpec) {
        lock(&self.shared)
            .routes
            .entry(cluster.to_owned())
            .or_default()
            .insert(route.to_owned(), response);
    }

    /// Calls received so far, by `"cluster METHOD /path"`.
    pub fn calls(&self) -> BTreeMap<String, usize> {
        lock(&self.shared).calls.clone()
    }

    /// The headers the echo service received with the request tagged `tag`, if it got it.
    pub fn forwarded(&self, tag: &str) -> Option<Vec<(String, String)>> {
        lock(&self.shared).forwarded.get(tag).cloned()
    }
}
