//! The Istio deployment (envoy/istio/): the WasmPlugin's pluginConfig is accepted by the filter's
//! own parser, the manifests agree with each other (cluster names, ports, issuer, selectors), the
//! Istio-sidecar-shaped Envoy (envoy/istio-sidecar.yaml) carries exactly that pluginConfig, and it
//! passes the same behaviour suite as the local stack's envoy/envoy.yaml, including fail-closed
//! when the IDP is down.

use e2e::artifacts;
use e2e::client;
use e2e::envoy::render;
use e2e::stack::{DEMO_CLIENT, Gateway, ISTIO_SIDECAR_TEMPLATE, Stack, StackOptions};
use e2e::suite;
use filter::config::FilterConfig;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn istio_dir() -> std::path::PathBuf {
    artifacts::workspace_root().join("envoy/istio")
}

/// Every document of a YAML file of envoy/istio/.
fn docs(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(istio_dir().join(file)).unwrap();
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn doc(file: &str, kind: &str, name: &str) -> Value {
    docs(file)
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file}: no {kind} {name}"))
}

fn wasmplugin() -> Value {
    doc("wasmplugin.yaml", "WasmPlugin", "oauth2-gateway")
}

/// What istiod hands the filter: pluginConfig is a google.protobuf.Struct, whose numbers are
/// doubles, marshalled to JSON (Go prints whole doubles without a fraction).
fn as_istio_struct_json(value: &Value) -> Value {
    match value {
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 && f.abs() < 2f64.powi(53) {
                json!(f as i64)
            } else {
                json!(f)
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(as_istio_struct_json).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), as_istio_struct_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn plugin_config_json(plugin: &Value) -> String {
    serde_json::to_string(&as_istio_struct_json(&plugin["spec"]["pluginConfig"])).unwrap()
}

#[test]
fn wasmplugin_plugin_config_is_accepted_by_the_filter() {
    let plugin = wasmplugin();
    let json = plugin_config_json(&plugin);
    let config = FilterConfig::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let idp = "outbound|9000||idp.oauth2-system.svc.cluster.local";
    let jwks = config.providers[0].jwks.as_ref().unwrap();
    assert_eq!(jwks.cluster, idp);
    assert_eq!(jwks.authority, "idp.oauth2-system.svc.cluster.local:9000");
    assert_eq!(
        config.revocation_feed.as_ref().unwrap().endpoint.cluster,
        idp
    );
    assert!(config.logout.is_some());
    // the single logout.revoke belongs to the only provider
    let revocation = config.providers[0].revocation.as_ref().unwrap();
    assert_eq!(
        revocation.endpoint.as_ref().map(|e| e.cluster.as_str()),
        Some(idp)
    );
    assert_eq!(config.rules.len(), 5);

    // the parser really checks: a typo or a forbidden value in the manifest would fail here
    let mut typo: Value = serde_json::from_str(&json).unwrap();
    typo["providers"][0]["audience"] = json!(["demo-api"]);
    let e = FilterConfig::from_json(typo.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("audience"), "{e}");
    let mut hs256: Value = serde_json::from_str(&json).unwrap();
    hs256["providers"][0]["algorithms"] = json!(["HS256"]);
    assert!(FilterConfig::from_json(hs256.to_string().as_bytes()).is_err());
}

#[test]
fn wasmplugin_and_manifests_agree() {
    let plugin = wasmplugin();
    let spec = &plugin["spec"];
    assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert!(
        spec["url"].as_str().unwrap().starts_with("oci://"),
        "{}",
        spec["url"]
    );
    let sha = spec["sha256"].as_str().unwrap();
    assert!(
        sha.len() == 64
            && sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "sha256 must be the image digest's 64 hex digits: {sha}"
    );

    // the selector picks the resource server's pods, in the same namespace
    let rs = doc("resource-server.yaml", "Deployment", "resource-server");
    assert_eq!(plugin["metadata"]["namespace"], rs["metadata"]["namespace"]);
    let labels = &rs["spec"]["template"]["metadata"]["labels"];
    for (k, v) in spec["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "selector {k}");
    }
    let policy = doc(
        "authorization-policy.yaml",
        "AuthorizationPolicy",
        "deny-internal",
    );
    assert_eq!(policy["spec"]["selector"], spec["selector"]);
    assert_eq!(
        policy["metadata"]["namespace"],
        plugin["metadata"]["namespace"]
    );

    // every cluster the filter calls exists in the mesh: outbound|PORT||NAME.NS.svc.cluster.local
    // is a Service port; inbound|PORT|| is the app's port in the selected pods
    let config = &spec["pluginConfig"];
    let clusters = [
        &config["providers"][0]["jwks"]["cluster"],
        &config["revocation_feed"]["cluster"],
        &config["logout"]["revoke"]["cluster"],
        &config["logout"]["resource_server"]["cluster"],
    ];
    for cluster in clusters {
        let cluster = cluster.as_str().unwrap();
        let parts: Vec<&str> = cluster.split('|').collect();
        assert_eq!(
            parts.len(),
            4,
            "{cluster}: not Istio's DIRECTION|PORT|SUBSET|HOST"
        );
        let port: u64 = parts[1].parse().unwrap();
        match (parts[0], parts[3]) {
            ("outbound", host) => {
                let (name, rest) = host.split_once('.').unwrap();
                let namespace = rest.strip_suffix(".svc.cluster.local").unwrap();
                let file = format!("{name}.yaml");
                let service = doc(&file, "Service", name);
                assert_eq!(service["metadata"]["namespace"], namespace, "{cluster}");
                let ports = service["spec"]["ports"].as_array().unwrap();
                assert!(
                    ports
                        .iter()
                        .any(|p| p["port"] == port && p["name"] == "http"),
                    "{cluster}: no http port {port} on Service {name}"
                );
            }
            ("inbound", "") => {
                let ports = rs["spec"]["template"]["spec"]["containers"][0]["ports"]
                    .as_array()
                    .unwrap();
                assert!(
                    ports.iter().any(|p| p["containerPort"] == port),
                    "{cluster}"
                );
                let sidecar = doc("resource-server.yaml", "Sidecar", "resource-server");
                assert_eq!(sidecar["spec"]["ingress"][0]["port"]["number"], port);
            }
            _ => panic!("{cluster}: unexpected cluster"),
        }
    }

    // tokens carry the IDP's issuer, which the filter requires
    let idp_config = doc("idp.yaml", "ConfigMap", "idp-config");
    let toml = idp_config["data"]["idp.toml"].as_str().unwrap();
    let issuer = config["providers"][0]["issuer"].as_str().unwrap();
    assert!(
        toml.contains(&format!("issuer = \"{issuer}\"")),
        "idp issuer differs from the WasmPlugin's {issuer}"
    );
    // the gateway client and the resource server's secret match the filter's
    assert!(toml.contains(&format!(
        "id = \"{}\"",
        config["idp_client"]["client_id"].as_str().unwrap()
    )));
    let secret = doc("resource-server.yaml", "Secret", "resource-server");
    assert_eq!(
        secret["stringData"]["revoke-secret"],
        config["logout"]["resource_server"]["secret"]
    );
}

fn find_wasm_filter(value: &Value) -> Option<&Value> {
    match value {
        Value::Object(o) => {
            if o.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("extensions.istio.io/wasmplugin/"))
            {
                return Some(value);
            }
            o.values().find_map(find_wasm_filter)
        }
        Value::Array(a) => a.iter().find_map(find_wasm_filter),
        _ => None,
    }
}

#[test]
fn istio_sidecar_config_carries_the_wasmplugin_as_istio_renders_it() {
    let plugin = wasmplugin();
    let config = &plugin["spec"]["pluginConfig"];
    let values = BTreeMap::from([
        ("LISTEN_PORT", "15006".to_owned()),
        ("ADMIN_PORT", "15000".to_owned()),
        ("IDP_PORT", "9000".to_owned()),
        ("RS_PORT", "8080".to_owned()),
        (
            "ISSUER",
            config["providers"][0]["issuer"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        (
            "LEEWAY_SECONDS",
            config["providers"][0]["leeway_seconds"].to_string(),
        ),
        (
            "JWKS_REFRESH_SECONDS",
            config["providers"][0]["jwks"]["refresh_seconds"].to_string(),
        ),
        ("FILTER_WASM", "/var/lib/istio/data/filter.wasm".to_owned()),
    ]);
    let template =
        std::fs::read_to_string(artifacts::workspace_root().join("envoy/istio-sidecar.yaml"))
            .unwrap();
    let rendered: Value = serde_saphyr::from_str(&render(&template, &values).unwrap()).unwrap();
    let filter = find_wasm_filter(&rendered).expect("no WasmPlugin filter");
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap(),
        plugin["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(
        filter["name"],
        format!("extensions.istio.io/wasmplugin/{name}")
    );
    let wasm = &filter["typed_config"]["config"];
    assert_eq!(wasm["name"], name);
    assert_eq!(wasm["root_id"], "");
    assert_eq!(wasm["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(wasm["failure_policy"], "FAIL_CLOSED");
    let carried: Value = serde_json::from_str(
        wasm["configuration"]["value"]
            .as_str()
            .expect("StringValue configuration"),
    )
    .unwrap();
    assert_eq!(
        carried,
        as_istio_struct_json(config),
        "envoy/istio-sidecar.yaml and envoy/istio/wasmplugin.yaml configure the filter differently"
    );
}

fn suite_on(template: &'static str) {
    let stack = Stack::start(StackOptions {
        envoy_template: template,
        ..StackOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    suite::run_all(&stack).unwrap_or_else(|e| {
        panic!(
            "envoy/{template}: {e}\nenvoy log:\n{}",
            stack.gateway.proc.log_tail()
        )
    });
}

#[test]
fn behaviour_suite_on_the_istio_sidecar_config() {
    let _slot = crate::slot();
    suite_on(ISTIO_SIDECAR_TEMPLATE);
}

#[test]
fn behaviour_suite_on_the_local_stack_config() {
    let _slot = crate::slot();
    suite_on("envoy.yaml");
}

#[test]
fn istio_sidecar_idp_outage_keeps_cached_keys_and_a_cold_sidecar_fails_closed() {
    let _slot = crate::slot();
    let options = StackOptions {
        envoy_template: ISTIO_SIDECAR_TEMPLATE,
        ..StackOptions::default()
    };
    let mut stack = Stack::start(options).unwrap_or_else(|e| panic!("{e}"));
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    stack.idp.proc.stop();
    let hello = |url: &str| {
        client::get(
            &format!("{url}/api/hello"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
    };
    // keys fetched before the outage still verify a token never seen before
    assert_eq!(hello(&stack.gateway_url).status, 200);

    // a sidecar that starts while the IDP is down (new pod, restart) has no keys: 503, never 200
    let cold = Gateway::launch_template(
        ISTIO_SIDECAR_TEMPLATE,
        stack.dir.path(),
        "cold-sidecar",
        stack.idp_port,
        stack.rs_port,
        &stack.issuer,
        options,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client::get(&format!("{}/ready", cold.admin_url), &[]).map(|r| r.status) != Ok(200) {
        assert!(Instant::now() < deadline, "{}", cold.proc.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    let res = hello(&cold.url);
    assert_eq!(res.status, 503, "{}", res.body);
    while cold.counter("oauth2gw.jwks_fetch_failed").unwrap_or(0) < 1 {
        assert!(Instant::now() < deadline, "no failed JWKS fetch counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hello(&cold.url).status, 503);
    // the warm sidecar still serves
    assert_eq!(hello(&stack.gateway_url).status, 200);
}

#[test]
fn the_postgres_idp_manifest_is_the_sqlite_one_with_replicas_on_a_shared_database() {
    // the same configuration (but the database) and the same Service: the WasmPlugin's clusters
    // and secrets hold for either manifest
    let toml = |file: &str| {
        let config = doc(file, "ConfigMap", "idp-config");
        let text = config["data"]["idp.toml"].as_str().unwrap().to_owned();
        text.lines()
            .filter(|l| !l.starts_with("database ="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(toml("idp.yaml"), toml("idp-postgres.yaml"));
    assert_eq!(
        doc("idp.yaml", "Service", "idp")["spec"],
        doc("idp-postgres.yaml", "Service", "idp")["spec"]
    );
    let deployment = doc("idp-postgres.yaml", "Deployment", "idp");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let secret = doc("idp-postgres.yaml", "Secret", "idp-secrets");
    for (name, key) in [
        ("IDP_DATABASE", "database-url"),
        ("IDP_KEY_ENCRYPTION_KEY", "key-encryption-key"),
    ] {
        let var = env.iter().find(|e| e["name"] == name).unwrap();
        assert_eq!(var["valueFrom"]["secretKeyRef"]["name"], "idp-secrets");
        assert_eq!(var["valueFrom"]["secretKeyRef"]["key"], key);
        assert!(secret["stringData"][key].is_string(), "{key}");
    }
    let url = secret["stringData"]["database-url"].as_str().unwrap();
    assert!(url.starts_with("postgres://"), "{url}");
    let host = url.split('@').nth(1).unwrap().split(':').next().unwrap();
    let (service, rest) = host.split_once('.').unwrap();
    let namespace = rest.strip_suffix(".svc.cluster.local").unwrap();
    let db_service = doc("idp-postgres.yaml", "Service", service);
    assert_eq!(db_service["metadata"]["namespace"], namespace);
    assert!(
        !deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.get("persistentVolumeClaim").is_some()),
        "replicas keep nothing on a volume"
    );
}
