"""The soak's traffic (scripts/soak): mixed operations through Envoy, every answer judged against
the status its kind must get. Python stdlib only (http.client, one keep-alive connection per
worker thread).

Request kinds (the tally's keys) and what each must answer:
  token_client_credentials  POST /oauth2/token, client_credentials (demo-client)   200 + access_token
  token_password            POST /oauth2/token, password grant (alice)             200 + access + refresh
  token_other_client        POST /oauth2/token, other-client (audience other-api)  200 + access_token
  refresh                   POST /oauth2/token, refresh_token grant                200 + new tokens
  cached_token              GET /api/hello with a token used many times before     200
  new_token                 GET /api/hello with a token never used before          200
  refreshed_token           GET /api/hello with the access token of a refresh      200
  logout                    POST /oauth2/logout with a session's access token      200 logged_out
  after_logout              GET /api/hello with that token right after logout      401 Bearer
  refresh_after_logout      POST /oauth2/token with that session's refresh token   400 invalid_grant
  garbage_token             GET /api/hello, Bearer of three base64url junk parts   401 Bearer
  bad_signature             a valid token with its signature changed               401 Bearer
  missing_token             no Authorization header                                401 Bearer
  wrong_audience            other-client's token (aud other-api)                   401 Bearer
  insufficient_scope        a read-scoped token on /api/admin/                     403 insufficient_scope
  expired_token             a token used after exp + leeway                        401 Bearer
A wrong answer is a status (or body) other than the expected one; an unexpected error is a
transport failure (connection refused or reset, timeout) or a 5xx that was not expected.
"""

import base64
import collections
import http.client
import json
import random
import threading
import time
import urllib.parse

DEMO = ("demo-client", "demo-client-secret-0123456789abcdef")
OTHER = ("other-client", "other-client-secret-0123456789abcdef")
USER = ("alice", "alice-password-123")

# operation -> weight (share of operations); each operation sends 1 to 4 requests
WEIGHTS = {
    "cached": 55,
    "invalid": 20,
    "new_client_credentials": 10,
    "refresh": 6,
    "password": 3,
    "logout": 3,
}
INVALID_KINDS = ["garbage_token", "bad_signature", "missing_token", "wrong_audience",
                 "insufficient_scope", "expired_token"]
MAX_SESSIONS = 32          # password-grant sessions kept for refresh and logout
CACHED_TOKENS = 4          # the cached tokens, renewed when CACHED_RENEW_S old
CACHED_RENEW_S = 120
EXAMPLES_PER_KIND = 5


def b64u_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_parts(token):
    """(header, claims) of a compact JWS, without checking anything."""
    h, p, _ = token.split(".")
    return b64u_json(h), b64u_json(p)


def basic(client):
    return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


class Tally:
    """Per kind: sent, ok, wrong, errors, and the first few examples of each failure."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kinds = collections.defaultdict(lambda: {"sent": 0, "ok": 0, "wrong": 0, "errors": 0})
        self.examples = collections.defaultdict(list)
        self.kids = collections.Counter()  # kid of every token the IDP issued

    def record(self, kind, outcome, detail=None):
        with self.lock:
            k = self.kinds[kind]
            k["sent"] += 1
            k[outcome] += 1
            if outcome != "ok" and len(self.examples[kind]) < EXAMPLES_PER_KIND:
                self.examples[kind].append(f"{time.strftime('%H:%M:%S')} {outcome}: {detail}")

    def total(self, field="sent"):
        with self.lock:
            return sum(k[field] for k in self.kinds.values())

    def snapshot(self):
        with self.lock:
            return {kind: dict(v) for kind, v in sorted(self.kinds.items())}


class Shared:
    """State the workers share: the cached tokens, the sessions, tokens waiting to expire."""

    def __init__(self, leeway_s):
        self.lock = threading.Lock()
        self.cached = []          # [(token, issued_at)]
        self.sessions = []        # [{"access", "refresh", "exp"}], popped while in use
        self.expiring = collections.deque(maxlen=64)  # (token, exp)
        self.other_token = None   # (token, exp)
        self.last_expiring = 0.0
        self.leeway_s = leeway_s
        self.start = None  # threading.Barrier of the workers (warm-up, see Worker.run)


class Worker(threading.Thread):
    def __init__(self, index, gateway_port, tally, shared, rate, deadline, seed):
        super().__init__(daemon=True, name=f"soak-worker-{index}")
        self.port = gateway_port
        self.tally = tally
        self.shared = shared
        self.interval = 1.0 / rate
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.conn = None
        self.ops = collections.Counter()

    # -- HTTP ------------------------------------------------------------------------------
    def send(self, method, path, headers=None, form=None):
        """(status, headers, body bytes), or raises on a transport failure."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        body = None
        headers = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            data = r.read()
            if r.will_close:
                self.conn.close()
                self.conn = None
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except Exception:
            self.conn.close()
            self.conn = None
            raise

    def expect(self, kind, method, path, status, token=None, form=None, auth=None, check=None):
        """Sends, judges and records one request; returns (ok, parsed JSON body or None)."""
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if auth is not None:
            headers["Authorization"] = basic(auth)
        try:
            got, hdrs, data = self.send(method, path, headers, form)
        except Exception as e:  # transport failure: an unexpected error
            self.tally.record(kind, "errors", f"{method} {path}: {type(e).__name__}: {e}")
            return False, None
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        problem = None
        if got != status:
            problem = f"status {got}, expected {status}"
        elif check is not None:
            problem = check(hdrs, doc)
        if problem is None:
            self.tally.record(kind, "ok")
            return True, doc
        detail = f"{method} {path}: {problem}; body {data[:200]!r}; www-authenticate {hdrs.get('www-authenticate')!r}"
        self.tally.record(kind, "errors" if got >= 500 and status < 500 else "wrong", detail)
        return False, doc

    # -- checks ----------------------------------------------------------------------------
    @staticmethod
    def bearer_challenge(hdrs, _doc):
        if not hdrs.get("www-authenticate", "").startswith("Bearer"):
            return "no WWW-Authenticate: Bearer challenge"
        return None

    @staticmethod
    def scope_challenge(hdrs, _doc):
        if "insufficient_scope" not in hdrs.get("www-authenticate", ""):
            return "no insufficient_scope in WWW-Authenticate"
        return None

    @staticmethod
    def has_tokens(*fields):
        def check(_hdrs, doc):
            if not isinstance(doc, dict) or any(not doc.get(f) for f in fields):
                return f"answer lacks {', '.join(fields)}"
            return None
        return check

    @staticmethod
    def error_code(code):
        def check(_hdrs, doc):
            if not isinstance(doc, dict) or doc.get("error") != code:
                return f"error is not {code}"
            return None
        return check

    @staticmethod
    def logged_out(_hdrs, doc):
        if not isinstance(doc, dict) or doc.get("status") != "logged_out":
            return "no status logged_out"
        return None

    # -- tokens ----------------------------------------------------------------------------
    def token(self, kind, form, client=DEMO, fields=("access_token",)):
        ok, doc = self.expect(kind, "POST", "/oauth2/token", 200, form=form, auth=client,
                              check=self.has_tokens(*fields))
        if not ok:
            return None
        try:
            header, claims = jwt_parts(doc["access_token"])
            self.tally.kids[header.get("kid")] += 1
            doc["exp"] = claims["exp"]
        except (ValueError, KeyError, TypeError):
            self.tally.record(kind, "wrong", "access_token is not a JWS with exp")
            return None
        return doc

    def client_credentials(self):
        return self.token("token_client_credentials",
                          {"grant_type": "client_credentials", "scope": "read"})

    def password_session(self):
        doc = self.token("token_password",
                         {"grant_type": "password", "username": USER[0], "password": USER[1],
                          "scope": "openid read"},
                         fields=("access_token", "refresh_token"))
        if doc is None:
            return None
        return {"access": doc["access_token"], "refresh": doc["refresh_token"], "exp": doc["exp"]}

    def refresh(self, session):
        doc = self.token("refresh", {"grant_type": "refresh_token", "refresh_token": session["refresh"]},
                         fields=("access_token", "refresh_token"))
        if doc is None:
            return None
        return {"access": doc["access_token"], "refresh": doc["refresh_token"], "exp": doc["exp"]}

    def hello(self, kind, token, status=200):
        check = self.bearer_challenge if status == 401 else None
        return self.expect(kind, "GET", "/api/hello", status, token=token, check=check)[0]

    # -- operations ------------------------------------------------------------------------
    def op_cached(self):
        s = self.shared
        now = time.monotonic()
        with s.lock:
            fresh = [t for t, at in s.cached if now - at < CACHED_RENEW_S]
            s.cached = [(t, at) for t, at in s.cached if now - at < CACHED_RENEW_S]
            need = len(fresh) < CACHED_TOKENS
        if need:
            doc = self.client_credentials()
            if doc is None:
                return
            with s.lock:
                s.cached.append((doc["access_token"], now))
            self.hello("new_token", doc["access_token"])
            return
        self.hello("cached_token", self.rng.choice(fresh))

    def op_new_client_credentials(self):
        doc = self.client_credentials()
        if doc is None:
            return
        if self.hello("new_token", doc["access_token"]):
            s = self.shared
            with s.lock:
                if time.monotonic() - s.last_expiring > 5:
                    s.last_expiring = time.monotonic()
                    s.expiring.append((doc["access_token"], doc["exp"]))

    def take_session(self):
        with self.shared.lock:
            if self.shared.sessions:
                return self.shared.sessions.pop(self.rng.randrange(len(self.shared.sessions)))
        return None

    def put_session(self, session):
        with self.shared.lock:
            self.shared.sessions.append(session)
            over = len(self.shared.sessions) > MAX_SESSIONS
            oldest = self.shared.sessions.pop(0) if over else None
        if oldest is not None:
            self.logout(oldest)

    def op_password(self):
        session = self.password_session()
        if session is None:
            return
        if self.hello("new_token", session["access"]):
            self.put_session(session)

    def op_refresh(self):
        session = self.take_session() or self.password_session()
        if session is None:
            return
        new = self.refresh(session)
        if new is None:
            return
        if self.hello("refreshed_token", new["access"]):
            self.put_session(new)

    def op_logout(self):
        session = self.take_session() or self.password_session()
        if session is not None:
            self.logout(session)

    def logout(self, session):
        if session["exp"] - time.time() < 30:  # about to expire: refresh first
            session = self.refresh(session)
            if session is None:
                return
        ok, _ = self.expect("logout", "POST", "/oauth2/logout", 200, token=session["access"],
                            check=self.logged_out)
        if not ok:
            return
        self.hello("after_logout", session["access"], 401)
        self.expect("refresh_after_logout", "POST", "/oauth2/token", 400,
                    form={"grant_type": "refresh_token", "refresh_token": session["refresh"]},
                    auth=DEMO, check=self.error_code("invalid_grant"))

    def op_invalid(self):
        kind = self.rng.choice(INVALID_KINDS)
        s = self.shared
        if kind == "garbage_token":
            junk = ".".join(base64.urlsafe_b64encode(self.rng.randbytes(24)).decode().rstrip("=")
                            for _ in range(3))
            self.hello(kind, junk, 401)
        elif kind == "bad_signature":
            with s.lock:
                base = s.cached[0][0] if s.cached else None
            if base is None:
                return
            head, sig = base.rsplit(".", 1)
            flipped = ("A" if sig[5] != "A" else "B")
            self.hello(kind, f"{head}.{sig[:5]}{flipped}{sig[6:]}", 401)
        elif kind == "missing_token":
            self.hello(kind, None, 401)
        elif kind == "wrong_audience":
            with s.lock:
                other = s.other_token
            if other is None or other[1] - time.time() < 30:
                doc = self.token("token_other_client", {"grant_type": "client_credentials"}, client=OTHER)
                if doc is None:
                    return
                other = (doc["access_token"], doc["exp"])
                with s.lock:
                    s.other_token = other
            self.hello(kind, other[0], 401)
        elif kind == "insufficient_scope":
            with s.lock:
                base = s.cached[-1][0] if s.cached else None
            if base is not None:
                self.expect(kind, "GET", "/api/admin/users", 403, token=base, check=self.scope_challenge)
        elif kind == "expired_token":
            with s.lock:
                due = s.expiring and s.expiring[0][1] + s.leeway_s + 2 < time.time()
                token = s.expiring.popleft()[0] if due else None
            if token is not None:
                self.hello(kind, token, 401)

    def run(self):
        # Warm-up: every worker's first operation is a password grant, all at the same moment.
        # The IDP keeps one argon2 buffer (m = 19 MiB) per concurrent verification, up to
        # password_policy.max_concurrent_hashes (idp/src/oauth/users.rs): this brings that pool to
        # the size this traffic (at most one login per worker at a time) can ever use, instead of
        # letting it grow by a step at whatever minute the workers first happen to coincide.
        if self.shared.start is not None:
            try:
                self.shared.start.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
        self.ops["password"] += 1
        self.op_password()
        ops = list(WEIGHTS)
        weights = [WEIGHTS[o] for o in ops]
        next_at = time.monotonic() + self.rng.random() * self.interval
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                break
            if next_at > now:
                time.sleep(min(next_at - now, self.deadline - now))
                continue
            op = self.rng.choices(ops, weights)[0]
            self.ops[op] += 1
            getattr(self, f"op_{op}")()
            next_at += self.interval
            if time.monotonic() - next_at > 1.0:  # fell behind: no burst to catch up
                next_at = time.monotonic()
        if self.conn is not None:
            self.conn.close()
