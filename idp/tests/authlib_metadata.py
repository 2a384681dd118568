"""Validates the IDP's live OpenID Provider metadata with Authlib (an independent relying-party
library): `OpenIDProviderMetadata.validate()` checks every field against OpenID Connect Discovery
1.0 and RFC 8414. Run by idp/tests/oidc_conformance.rs; Authlib comes from `scripts/test`
(`ensure_pip_pkg`). Exit status: 0 valid, 1 invalid (the reason on stderr), 3 Authlib missing.

    python authlib_metadata.py http://127.0.0.1:PORT/.well-known/openid-configuration
"""

import json
import sys
import urllib.request

try:
    from authlib.oidc.discovery import OpenIDProviderMetadata
except ImportError as e:  # pragma: no cover - the Rust test reports it
    print(f"authlib is not installed: {e}", file=sys.stderr)
    sys.exit(3)

with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    document = json.load(response)
try:
    OpenIDProviderMetadata(document).validate()
except ValueError as e:
    print(f"invalid OpenID Provider metadata: {e}", file=sys.stderr)
    sys.exit(1)
print("valid")
