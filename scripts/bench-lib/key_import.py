#!/usr/bin/env python3
"""What importing the public key on every verification costs (run by hand: python3
scripts/bench-lib/key_import.py; needs the Python package `cryptography`, which scripts/bench
installs).

Envoy's `verify_signature` foreign function (source/extensions/common/wasm/foreign.cc) parses
its protobuf arguments and imports the DER public key on every call before it verifies; Envoy's
`jwt_authn` parses its JWKS once and keeps the key objects. This prints, per algorithm, a
verification with a key parsed once, the same with the DER key imported first, and the import
alone. OpenSSL through pyca/cryptography, not Envoy's BoringSSL, so the figures are indicative;
the Python call overhead is in every row. Best of 5 runs of N verifications each, in process,
no network.
"""

import os
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

N = int(os.environ.get("N", "20000"))
RUNS = 5
# The size of a JWS signing input the IDP issues (header.claims, base64url).
MESSAGE = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + b"x" * 360


def best_microseconds(call):
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(N):
            call()
        best = min(best, (time.perf_counter() - start) / N * 1e6)
    return best


def der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rows():
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public, rsa_der = rsa_private.public_key(), der(rsa_private.public_key())
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    rsa_signature = rsa_private.sign(MESSAGE, pkcs1, sha256)

    ec_private = ec.generate_private_key(ec.SECP256R1())
    ec_public, ec_der = ec_private.public_key(), der(ec_private.public_key())
    ecdsa = ec.ECDSA(hashes.SHA256())
    ec_signature = ec_private.sign(MESSAGE, ecdsa)

    def rsa_imported():
        serialization.load_der_public_key(rsa_der).verify(rsa_signature, MESSAGE, pkcs1, sha256)

    def ec_imported():
        serialization.load_der_public_key(ec_der).verify(ec_signature, MESSAGE, ecdsa)

    return [
        ("RS256 (RSA-2048) verify, key parsed once",
         lambda: rsa_public.verify(rsa_signature, MESSAGE, pkcs1, sha256)),
        ("RS256 (RSA-2048) verify, DER key imported per call", rsa_imported),
        ("RS256 (RSA-2048) DER import alone", lambda: serialization.load_der_public_key(rsa_der)),
        ("ES256 (P-256) verify, key parsed once",
         lambda: ec_public.verify(ec_signature, MESSAGE, ecdsa)),
        ("ES256 (P-256) verify, DER key imported per call", ec_imported),
        ("ES256 (P-256) DER import alone", lambda: serialization.load_der_public_key(ec_der)),
    ]


def main():
    from cryptography.hazmat.backends.openssl import backend

    print(f"{backend.openssl_version_text()}; best of {RUNS} x {N} calls")
    for name, call in rows():
        print(f"{name:52s} {best_microseconds(call):7.1f} us")


if __name__ == "__main__":
    main()
