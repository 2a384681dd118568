// What the authorization endpoint must refuse, seen from a real browser: untrusted clients and
// redirect URIs get an error page and are never redirected to; other errors go back to the client
// with error=, the state and iss; forms without a valid CSRF token, and replayed forms, are
// refused and sign nobody in.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AUTHORISE, IDP_ORIGIN, codeRequest, discover, env, errorPageText, isLoginPage, launchBrowser, logIn,
  newContext, oidc, params, recordDocuments, startCallbackServer, waitForCallback,
  T, closeBounded, closePage,
} from './helpers.mjs';

const ERROR_TITLE = 'This sign-in request cannot be completed';

function authoriseUrl(query) {
  const url = new URL(AUTHORISE);
  for (const [k, v] of Object.entries(query)) {
    for (const value of [v].flat()) url.searchParams.append(k, value);
  }
  return url.href;
}

describe('refused authorization requests', () => {
  let browser, cb, redirectUri, challenge;

  before(async () => {
    browser = await launchBrowser();
    cb = await startCallbackServer();
    redirectUri = `${cb.base}/cb`;
    challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
  });
  after(async () => {
    await closeBounded(browser);
    await cb?.close();
  });

  /** Opens `url` in a fresh context; the IDP must show its error page and redirect nowhere. */
  async function expectErrorPage(url, what) {
    const ctx = await newContext(browser);
    try {
      const page = await ctx.newPage();
      const docs = recordDocuments(page);
      const hitsBefore = cb.hits.length;
      const res = await page.goto(url);
      assert.equal(new URL(page.url()).origin, IDP_ORIGIN, `${what}: stays on the IDP (${page.url()})`);
      assert.equal(res.status(), 400, `${what}: status`);
      const text = await errorPageText(page);
      assert.equal(text.h1, ERROR_TITLE, what);
      assert.ok(text.error.length > 0, `${what}: a message`);
      assert.deepEqual(docs.filter((d) => d.location), [], `${what}: no redirect`);
      assert.deepEqual(ctx.offLoopback, [], `${what}: nothing fetched off loopback`);
      assert.equal(cb.hits.length, hitsBefore, `${what}: the client was not called`);
      return text;
    } finally {
      await closeBounded(ctx);
    }
  }

  /** Opens `url`; the IDP must send the browser back to the client; returns query + fragment. */
  async function expectClientError(url) {
    const ctx = await newContext(browser);
    try {
      const page = await ctx.newPage();
      await page.goto(url, { waitUntil: 'commit' });
      return params(await waitForCallback(page, cb.base));
    } finally {
      await closeBounded(ctx);
    }
  }

  const valid = () => ({
    response_type: 'code',
    client_id: env.webClient.id,
    redirect_uri: redirectUri,
    scope: 'openid read',
    state: 'st-1',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });

  test('unknown client: error page, no redirect', T, async () => {
    await expectErrorPage(authoriseUrl({ ...valid(), client_id: 'no-such-client' }), 'unknown client');
    const { client_id: _, ...noClient } = valid();
    await expectErrorPage(authoriseUrl(noClient), 'no client_id');
  });

  test('unregistered and open-redirect redirect_uris: error page, no redirect', T, async () => {
    const port = new URL(cb.base).port;
    const bad = [
      'http://127.0.0.1.evil.example/cb',
      `http://127.0.0.1.evil.example:${port}/cb`,
      'https://evil.example',
      'https://evil.example/cb',
      `http://localhost:${port}/cb`,
      `http://127.0.0.2:${port}/cb`,
      `http://[::1]:${port}/cb`,
      `https://127.0.0.1:${port}/cb`,
      `http://127.0.0.1:${port}/cb/more`,
      `http://127.0.0.1:${port}/cbx`,
      `http://127.0.0.1:${port}/cb?next=https://evil.example`,
      `http://127.0.0.1:${port}/cb#https://evil.example`,
      `http://127.0.0.1:${port}@evil.example/cb`,
      `http://evil.example@127.0.0.1:${port}/cb`,
      '//evil.example/cb',
      '/cb',
      'javascript:alert(document.domain)',
      'data:text/html,<h1>hi</h1>',
    ];
    for (const uri of bad) {
      await expectErrorPage(authoriseUrl({ ...valid(), redirect_uri: uri }), `redirect_uri ${uri}`);
    }
    await expectErrorPage(authoriseUrl({ ...valid(), redirect_uri: [redirectUri, 'https://evil.example/cb'] }), 'repeated redirect_uri');
    const { redirect_uri: _, ...noRedirect } = valid();
    await expectErrorPage(authoriseUrl(noRedirect), 'no redirect_uri');
    // The error page is escaped HTML, not a place to inject markup.
    const page = await expectErrorPage(authoriseUrl({ ...valid(), client_id: '<script>alert(1)</script>' }), 'markup in client_id');
    assert.doesNotMatch(page.error, /<script/);
  });

  test('a public client without PKCE: back to the client with invalid_request, state and iss', T, async () => {
    const got = await expectClientError(authoriseUrl({
      response_type: 'code', client_id: env.publicClient.id, redirect_uri: redirectUri, scope: 'openid', state: 'no-pkce-state',
    }));
    assert.equal(got.query.error, 'invalid_request');
    assert.equal(got.query.state, 'no-pkce-state');
    assert.equal(got.query.iss, env.idpUrl);
    assert.equal(got.query.code, undefined);
  });

  test('PKCE plain is refused (S256 only)', T, async () => {
    const got = await expectClientError(authoriseUrl({
      ...valid(), client_id: env.publicClient.id, code_challenge: 'a'.repeat(43), code_challenge_method: 'plain', state: 'plain-state',
    }));
    assert.equal(got.query.error, 'invalid_request');
    assert.equal(got.query.state, 'plain-state');
  });

  test('unsupported response_type: unsupported_response_type with the state', T, async () => {
    for (const responseType of ['id_token', 'magic']) {
      const got = await expectClientError(authoriseUrl({ ...valid(), response_type: responseType, state: `rt-${responseType}` }));
      assert.equal(got.query.error, 'unsupported_response_type', responseType);
      assert.equal(got.query.state, `rt-${responseType}`);
      assert.equal(got.query.iss, env.idpUrl);
    }
    // Hybrid flows are not supported: the error may come in the query or the fragment.
    const got = await expectClientError(authoriseUrl({ ...valid(), response_type: 'code id_token', nonce: 'n', state: 'rt-hybrid' }));
    const where = got.fragment.error ? got.fragment : got.query;
    assert.equal(where.error, 'unsupported_response_type');
    assert.equal(where.state, 'rt-hybrid');
    assert.equal(got.query.code, undefined);
  });

  test('an invalid scope goes back as invalid_scope with the state', T, async () => {
    const got = await expectClientError(authoriseUrl({ ...valid(), scope: 'openid admin', state: 'scope-state' }));
    assert.equal(got.query.error, 'invalid_scope');
    assert.equal(got.query.state, 'scope-state');
  });

  test('state: any value echoed exactly; none sent, none returned (the server does not require it)', T, async () => {
    const ctx = await newContext(browser);
    try {
      const pub = await discover(env.publicClient.id, undefined);
      const page = await ctx.newPage();
      const odd = 'a b&c=d/é?#%20+';
      let req = await codeRequest(pub, redirectUri, 'openid read', { state: odd });
      await page.goto(req.url.href);
      await logIn(page);
      let got = params(await waitForCallback(page, cb.base)).query;
      assert.ok(got.code);
      assert.equal(got.state, odd);

      // Signed in now (SSO): a request without state is answered without state.
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(pub, {
        redirect_uri: redirectUri,
        scope: 'openid read',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      await page.goto(url.href, { waitUntil: 'commit' });
      const callback = await waitForCallback(page, cb.base);
      got = params(callback).query;
      assert.ok(got.code);
      assert.equal(got.state, undefined);
      const tokens = await oidc.authorizationCodeGrant(pub, new URL(callback), {
        pkceCodeVerifier: verifier,
        expectedState: oidc.skipStateCheck,
      });
      assert.ok(tokens.access_token);
    } finally {
      await closeBounded(ctx);
    }
  });

  /** A fresh context on the web client's login page, with its form fields. */
  async function loginForm(ctx, state) {
    const page = await ctx.newPage();
    await page.goto(authoriseUrl({ ...valid(), state }));
    assert.ok(await isLoginPage(page), 'the login page');
    const fields = await page.$$eval('form input[type=hidden]', (inputs) => inputs.map((i) => [i.name, i.value]));
    return { page, fields };
  }

  async function postForm(ctx, form) {
    return ctx.request.post(AUTHORISE, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: IDP_ORIGIN },
      data: new URLSearchParams(form).toString(),
      maxRedirects: 0,
      timeout: 10_000,
    });
  }

  async function expectNotSignedIn(ctx) {
    const page = await ctx.newPage();
    await page.goto(authoriseUrl({ ...valid(), state: 'check' }));
    assert.ok(await isLoginPage(page), 'still asked to sign in');
    await closePage(page);
  }

  test('login form without its CSRF token, or with a wrong one: 400, nobody signed in', T, async () => {
    const ctx = await newContext(browser);
    try {
      const { fields } = await loginForm(ctx, 'csrf-state');
      assert.ok(fields.some(([k]) => k === 'login_csrf'));
      const credentials = [['username', env.user.username], ['password', env.user.password]];
      const hitsBefore = cb.hits.length;

      const without = await postForm(ctx, [...fields.filter(([k]) => k !== 'login_csrf'), ...credentials]);
      assert.equal(without.status(), 400, `without login_csrf: ${without.status()} ${without.headers().location ?? ''}`);
      assert.equal(without.headers().location, undefined);
      assert.match(await without.text(), /class="error"/);

      const wrong = await postForm(ctx, [...fields.map(([k, v]) => [k, k === 'login_csrf' ? `${v.slice(0, -2)}xx` : v]), ...credentials]);
      assert.equal(wrong.status(), 400, 'wrong login_csrf');
      assert.equal(wrong.headers().location, undefined);

      const empty = await postForm(ctx, [...fields.map(([k, v]) => [k, k === 'login_csrf' ? '' : v]), ...credentials]);
      assert.equal(empty.status(), 400, 'empty login_csrf');

      // The right token from another browser (no matching cookie) is refused too.
      const other = await newContext(browser);
      try {
        const res = await postForm(other, [...fields, ...credentials]);
        assert.equal(res.status(), 400, 'token without its cookie');
        assert.equal(res.headers().location, undefined);
        await expectNotSignedIn(other);
      } finally {
        await closeBounded(other);
      }
      assert.equal(cb.hits.length, hitsBefore, 'no code was issued');
      assert.deepEqual((await ctx.cookies()).filter((c) => !/csrf/i.test(c.name)).map((c) => c.name), [], 'no cookie but the CSRF one');
      await expectNotSignedIn(ctx);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('a replayed login form is refused; login answers 303; cookies HttpOnly and SameSite=Lax; no framing', T, async () => {
    const ctx = await newContext(browser);
    try {
      const { page } = await loginForm(ctx, 'replay-state');
      const loginResponse = await page.goto(page.url()); // the same page, again: check its headers
      const headers = loginResponse.headers();
      const csp = headers['content-security-policy'] ?? '';
      assert.ok(headers['x-frame-options']?.toUpperCase() === 'DENY' || /frame-ancestors\s+'none'/.test(csp),
        `anti-framing headers: ${JSON.stringify(headers)}`);
      assert.match(headers['cache-control'] ?? '', /no-store/);

      let posted;
      page.on('request', (r) => { if (r.method() === 'POST' && r.url().startsWith(AUTHORISE)) posted ??= r.postData(); });
      const docs = recordDocuments(page);
      await logIn(page);
      // Consent may be asked (first time for this user and client) — allow, then the callback.
      const consent = page.locator('button[name=consent][value=allow]');
      if (!page.url().startsWith(cb.base) && await consent.isVisible()) await consent.click();
      const got = params(await waitForCallback(page, cb.base)).query;
      assert.ok(got.code);
      assert.equal(got.state, 'replay-state');
      assert.ok(posted, 'the login form body was seen');
      assert.ok(docs.some((d) => d.status === 303), `303 after POST: ${JSON.stringify(docs)}`);

      const cookies = await ctx.cookies(AUTHORISE);
      assert.ok(cookies.length > 0, 'the IDP set a session cookie');
      for (const c of cookies) {
        assert.equal(c.httpOnly, true, `${c.name} HttpOnly`);
        assert.equal(c.sameSite, 'Lax', `${c.name} SameSite`);
      }

      const hits = cb.hits.length;
      const replay = await ctx.request.post(AUTHORISE, {
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: IDP_ORIGIN },
        data: posted,
        maxRedirects: 0,
        timeout: 10_000,
      });
      assert.equal(replay.status(), 400, `replayed form: ${replay.status()} ${replay.headers().location ?? ''}`);
      assert.equal(replay.headers().location, undefined);

      const elsewhere = await newContext(browser);
      try {
        const res = await elsewhere.request.post(AUTHORISE, {
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          data: posted,
          maxRedirects: 0,
          timeout: 10_000,
        });
        assert.equal(res.status(), 400, 'replayed from another browser');
        assert.equal(res.headers().location, undefined);
        await expectNotSignedIn(elsewhere);
      } finally {
        await closeBounded(elsewhere);
      }
      assert.equal(cb.hits.length, hits, 'no second code');
    } finally {
      await closeBounded(ctx);
    }
  });
});
