"""DPoP (RFC 9449) for the gateway benchmark: a client key, its RFC 7638 thumbprint, proofs.

Used by scripts/bench-lib/bench.py (Python package `cryptography`): the DPoP case sends one
DPoP-bound access token (cached by the gateway after its first request) with a NEW proof on every
request, so that each request pays the proof's checks (signature by the `jwk` in its header,
thumbprint, `htm`/`htu`/`iat`/`ath`, the replay cache write) and nothing else.
"""

import base64
import hashlib
import json
import os
import time


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class ProofKey:
    """A DPoP client key: ES256 (P-256) or EdDSA (Ed25519)."""

    def __init__(self, alg):
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        self.alg = alg
        if alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
            nums = key.public_key().public_numbers()
            # RFC 7638: the required members only, lexicographic order.
            self.jwk = {"crv": "P-256", "kty": "EC", "x": b64u(nums.x.to_bytes(32, "big")),
                        "y": b64u(nums.y.to_bytes(32, "big"))}

            def sign(data):
                r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        elif alg == "EdDSA":
            key = ed25519.Ed25519PrivateKey.generate()
            raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64u(raw)}
            sign = key.sign
        else:
            raise ValueError(f"no DPoP proofs with {alg} in the benchmark")
        self.sign = sign
        self.jkt = b64u(hashlib.sha256(compact(self.jwk)).digest())
        self.header = b64u(compact({"typ": "dpop+jwt", "alg": alg, "jwk": self.jwk}))

    def proof(self, htm, htu, access_token=None, iat=None):
        claims = {"jti": b64u(os.urandom(16)), "htm": htm, "htu": htu,
                  "iat": int(time.time()) if iat is None else iat}
        if access_token is not None:
            claims["ath"] = b64u(hashlib.sha256(access_token.encode()).digest())
        signing_input = self.header + "." + b64u(compact(claims))
        return signing_input + "." + b64u(self.sign(signing_input.encode()))


def write_proofs(path, key, token, htu, n):
    """n lines "token<TAB>proof", each proof new (its own jti, iat now) for GET `htu` and `token`.
    The same claims as ProofKey.proof, formatted here without json (the runner writes up to a few
    hundred thousand proofs before a run)."""
    iat = int(time.time())
    ath = b64u(hashlib.sha256(token.encode()).digest())
    head = key.header + "."
    # The jti is the only claim that changes: {"jti":"...", then the rest.
    tail = compact({"htm": "GET", "htu": htu, "iat": iat, "ath": ath})[1:].decode()
    entropy = os.urandom(16 * n)
    sign = key.sign
    with open(path, "w") as f:
        for i in range(n):
            claims = f'{{"jti":"{b64u(entropy[16 * i:16 * i + 16])}",{tail}'
            signing_input = head + b64u(claims.encode())
            f.write(f"{token}\t{signing_input}.{b64u(sign(signing_input.encode()))}\n")
