"""Tokens the gateway benchmark mints itself (scripts/bench-lib/bench.py): RS256 and EdDSA
issuers served on loopback, and a DPoP-bound ES256 token from the IDP (Python `cryptography`)."""

import base64
import http.client
import http.server
import json
import os
import socket
import sys
import threading
import time

from dpop_proofs import b64u


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def minted_setup(work, alg, n, bound_jkt=None):
    """A key (RS256: RSA-2048; EdDSA: Ed25519), its JWKS served on loopback (as an issuer), and n
    tokens of that alg with the claims the IDP puts in its tokens (RFC 9068, typ at+jwt); with
    `bound_jkt`, also one token bound to that DPoP key (cnf.jkt). None when `cryptography` is
    absent."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
    except ImportError:
        return None
    kid = f"bench-{alg.lower()}"
    if alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = key.public_key().public_numbers()
        to_bytes = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")  # noqa: E731
        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
               "n": b64u(to_bytes(pub.n)), "e": b64u(to_bytes(pub.e))}
        sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # noqa: E731
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": b64u(raw)}
        sign = key.sign
    jwks = json.dumps({"keys": [jwk]}).encode()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"

    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.split("?")[0] != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    header = b64u(json.dumps({"typ": "at+jwt", "alg": alg, "kid": kid}, separators=(",", ":")).encode())
    now = int(time.time())

    def token(cnf=None):
        claims = {"iss": issuer, "sub": "client:demo-client", "aud": "demo-api", "exp": now + 3600,
                  "iat": now, "nbf": now, "jti": b64u(os.urandom(16)), "client_id": "demo-client",
                  "scope": "read"}
        if cnf:
            claims["cnf"] = {"jkt": cnf}
        signing_input = header + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
        return signing_input + "." + b64u(sign(signing_input.encode()))

    t0 = time.monotonic()
    tokens = [token() for _ in range(n)]
    rate = n / (time.monotonic() - t0)
    return port, issuer, tokens, rate, (token(bound_jkt) if bound_jkt else None)


def mint_idp_dpop(port, issuer, key):
    """One DPoP-bound ES256 access token from the IDP: client_credentials with a proof (RFC 9449
    §5) of `key` for the token endpoint."""
    auth = "Basic " + base64.b64encode(b"demo-client:demo-client-secret-0123456789abcdef").decode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/oauth2/token", "grant_type=client_credentials",
                  {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded",
                   "DPoP": key.proof("POST", f"{issuer}/oauth2/token")})
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    if r.status != 200 or json.loads(body).get("token_type") != "DPoP":
        sys.exit(f"the IDP did not issue a DPoP-bound token: {r.status} {body[:300]!r}")
    return json.loads(body)["access_token"]
