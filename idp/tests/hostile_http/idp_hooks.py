"""Schemathesis hooks for idp/tests/hostile_http.rs (loaded with SCHEMATHESIS_HOOKS=idp_hooks).

- The revocation feed's `wait` holds an answer up to 30 s when nothing is revoked: a generated
  `wait` above 1 is sent as 1, so the run stays short (bad values, e.g. `-1` or `x`, are sent as
  generated: they must be refused with 400).
- Every request sent is logged as `METHOD PATH` to the file `IDP_HOOKS_CALL_LOG` names (the
  test counts them per endpoint).
- `error_shape`: every 4xx answer is in the shape of its endpoint family: RFC 6749 §5.2 JSON for
  the token-style endpoints and the documents, an RFC 6750 challenge without a body for userinfo,
  an HTML page for the browser endpoints, RFC 6750 (a `Bearer realm="ssf"` challenge and a JSON
  body) for the SSF transmitter's endpoints, RFC 8935 `{"err", "description"}` for the hub's SSF
  push endpoint's own 400s (its body, `application/secevent+jwt`, is sent as text).
"""

import json
import os

import schemathesis

FEED = "/oauth2/revocations"
USERINFO = "/oauth2/userinfo"
PAGES = ("/oauth2/authorise", "/oauth2/authorize", "/oauth2/logout")
# The SSF transmitter's bearer-protected endpoints: RFC 6750 (challenge and JSON body).
SSF = ("/ssf/stream", "/ssf/status", "/ssf/verify", "/ssf/poll")
RFC6749_CODES = {
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "invalid_dpop_proof", "use_dpop_nonce",
}
RFC6750_CODES = {"invalid_request", "invalid_token", "insufficient_scope", "invalid_dpop_proof",
                 "use_dpop_nonce"}
SSF_CODES = {"invalid_request", "invalid_token", "insufficient_scope", "not_found", "conflict"}
# The hub's SSF receiver push endpoint (RFC 8935): errors are {"err", "description"}.
SSF_PUSH = "/ssf/push/{stream}"
RFC8935_CODES = {"invalid_request", "invalid_key", "invalid_issuer", "invalid_audience",
                 "authentication_failed", "access_denied"}


@schemathesis.serializer("application/secevent+jwt")
def secevent_jwt(ctx, value):
    """A pushed SET is the body as text (RFC 8935 §2)."""
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == FEED and isinstance(case.query, dict) and "wait" in case.query:
        value = case.query["wait"]
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            case.query["wait"] = 1
        elif isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 1:
            case.query["wait"] = "1"


@schemathesis.hook
def after_call(context, case, response):
    log = os.environ.get("IDP_HOOKS_CALL_LOG")
    if log:
        with open(log, "a", encoding="ascii") as f:
            f.write(f"{case.method.upper()} {case.operation.path}\n")


def _challenge_error(value):
    for part in value.split(","):
        name, _, code = part.strip().partition("=")
        if name.endswith("error") and not name.endswith("_error"):
            return code.strip('"')
    return None


@schemathesis.check
def error_shape(ctx, response, case):
    status = response.status_code
    if not 400 <= status < 500 or status == 404:
        return None
    path = case.operation.path
    content_type = response.headers.get("content-type", [""])[0].lower()
    if path in PAGES:
        if not content_type.startswith("text/html"):
            raise AssertionError(f"{status} from a browser endpoint is not an HTML page: {content_type!r}")
        return None
    if path == USERINFO:
        challenges = response.headers.get("www-authenticate", [])
        if not challenges:
            raise AssertionError(f"{status} from userinfo without WWW-Authenticate")
        code = _challenge_error(challenges[0])
        if response.content:
            raise AssertionError(f"{status} from userinfo with a body")
        if status != 401 and code not in RFC6750_CODES:
            raise AssertionError(f"{status} from userinfo with error={code!r}")
        return None
    if not content_type.startswith("application/json"):
        raise AssertionError(f"{status} is not JSON: {content_type!r}")
    body = json.loads(response.content)
    if path == SSF_PUSH and status == 400:
        # (405, 413, 431 are the router's own refusals, RFC 6749 JSON like everywhere)
        if body.get("err") not in RFC8935_CODES or not isinstance(body.get("description"), str):
            raise AssertionError(f"{status} from the SSF push endpoint not in RFC 8935's shape: {body!r}")
        return None
    if path in SSF:
        if path == "/ssf/poll" and status == 400 and "err" in body:
            return None  # RFC 8936 §2.4
        if body.get("error") not in SSF_CODES:
            raise AssertionError(f"{status} from an SSF endpoint with error={body.get('error')!r}")
        challenge = response.headers.get("www-authenticate", [""])[0]
        if status in (401, 403) and not challenge.startswith('Bearer realm="ssf"'):
            raise AssertionError(f"{status} from an SSF endpoint without the Bearer challenge")
        return None
    if body.get("error") not in RFC6749_CODES:
        raise AssertionError(f"{status} with error={body.get('error')!r}")
    description = body.get("error_description", "")
    if any(not (0x20 <= ord(c) <= 0x7E) or c in '"\\' for c in description):
        raise AssertionError(f"error_description outside RFC 6749's characters: {description!r}")
    if status == 401 and response.headers.get("www-authenticate", [""])[0] != 'Basic realm="idp"':
        raise AssertionError("401 without the Basic challenge")
    return None
