#!/usr/bin/env python3
"""Collects the unsigned seeds of the fuzz targets from the repository (run from anywhere; the
signed ones, tokens and proofs, are written by `cargo run --release -p seedgen`):

- plugin_config: the filter configuration of every shipped Envoy config (`configuration` of the
  Wasm filter, `filter_config` of the native module, the Istio WasmPlugin's `pluginConfig`), with
  the placeholders filled as scripts/up fills them;
- jwks and token: the RFC 7515/7520/8037 example keys (one JWKS each) and tokens of the
  filter's test vectors;
- revocation_feed: answers in the shape the IDP's /oauth2/revocations sends;
- idp_token_request: the form bodies and Authorization headers of the IDP's own tests.
"""
import base64, json, pathlib, re, yaml

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"
PLACEHOLDERS = {"ADMIN_PORT": "9901", "IDP_PORT": "9000", "RS_PORT": "9100", "LISTEN_PORT": "10000",
                "ISSUER": "http://127.0.0.1:9000", "JWKS_REFRESH_SECONDS": "300",
                "LEEWAY_SECONDS": "30", "FILTER_WASM": "/tmp/filter.wasm"}


def write(target, name, content):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(content.encode() if isinstance(content, str) else content)


def plugin_configs(node):
    """Yields the filter configuration strings found anywhere in a YAML document."""
    if isinstance(node, dict):
        for key in ("configuration", "filter_config"):
            v = node.get(key)
            if isinstance(v, dict) and isinstance(v.get("value"), str) and "providers" in v["value"]:
                yield v["value"]
        if isinstance(node.get("pluginConfig"), dict):
            yield json.dumps(node["pluginConfig"], indent=2)
        for v in node.values():
            yield from plugin_configs(v)
    elif isinstance(node, list):
        for v in node:
            yield from plugin_configs(v)


def collect_plugin_configs():
    for path in sorted((ROOT / "envoy").rglob("*.yaml")):
        text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: PLACEHOLDERS[m.group(1)], path.read_text())
        for i, doc in enumerate(yaml.safe_load_all(text)):
            for j, config in enumerate(plugin_configs(doc)):
                json.loads(config)  # every shipped configuration is JSON
                name = f"{path.relative_to(ROOT / 'envoy')}".replace("/", "_")
                write("plugin_config", f"{name}-{i}-{j}.json", config)


def collect_jwks():
    vectors = json.loads((ROOT / "filter/tests/vectors/rfc_jws_examples.json").read_text())
    for ex in vectors["examples"]:
        jwk = ex.get("jwk") or ex.get("key")
        if isinstance(jwk, dict):
            name = re.sub(r"[^a-z0-9]+", "-", ex.get("name", "example").lower()).strip("-")
            write("jwks", f"{name}.json", json.dumps({"keys": [jwk]}))
        if isinstance(ex.get("compact"), str):
            write("token", name, ex["compact"])


def collect_revocation_feed():
    write("revocation_feed", "empty.json", json.dumps({"cursor": 0, "revoked": []}))
    write("revocation_feed", "jti-and-sid.json", json.dumps({"cursor": 42, "revoked": [
        {"jti": "0b6c1f7e-3f5c-4a51-9d0a-2d4f7d3c9e11", "exp": 1800000300},
        {"sid": "sid-1", "exp": 1800003600}]}))
    write("revocation_feed", "string-cursor.json", json.dumps({"cursor": "c-17", "revoked": [
        {"jti": "jti-1", "exp": 1800000300}]}))
    write("revocation_feed", "expired-entry.json", json.dumps({"cursor": 7, "revoked": [
        {"jti": "old", "exp": 1000}, {"sid": "s-2", "exp": 4294967296}]}))


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def collect_idp_requests():
    demo = ("demo-client", "demo-client-secret-0123456789abcdef")
    gateway = ("gateway", "gateway-secret-0123456789abcdef0123")
    form = "application/x-www-form-urlencoded"
    cases = {
        "client-credentials-basic": (basic(*demo), form, "grant_type=client_credentials&scope=read"),
        "client-credentials-post": ("", form, f"grant_type=client_credentials&client_id={demo[0]}&client_secret={demo[1]}"),
        "gateway-revoke-basic": (basic(*gateway), form, "token=abc.def.ghi&token_type_hint=access_token"),
        "password": (basic(*demo), form, "grant_type=password&username=alice&password=alice-password-123&scope=openid"),
        "refresh": (basic(*demo), form, "grant_type=refresh_token&refresh_token=rt-0123"),
        "public-code": ("", f"{form}; charset=UTF-8", "grant_type=authorization_code&client_id=public-app&code=c-1&redirect_uri=app.example.native:/callback&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "both-methods": (basic(*demo), form, f"grant_type=client_credentials&client_secret={demo[1]}"),
        "percent-encoded": (basic("demo%2Dclient", "demo-client-secret-0123456789abcdef"), form, "grant_type=client_credentials&scope=read+write"),
        "json-body": (basic(*demo), "application/json", '{"grant_type":"client_credentials"}'),
    }
    for name, (auth, ctype, body) in cases.items():
        write("idp_token_request", name, f"{auth}\n{ctype}\n{body}")


collect_plugin_configs()
collect_jwks()
collect_revocation_feed()
collect_idp_requests()
