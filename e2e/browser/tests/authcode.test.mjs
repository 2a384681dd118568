// Authorization code + PKCE in a real browser, finished by openid-client (a certified OpenID
// relying party): login, consent, code, ID token validation, userinfo, refresh; then single
// sign-on (no password the second time), prompt=login and max_age; consent denied; a first-party
// public client (no consent page).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AUTHORISE, IDP_ORIGIN, artifact, codeRequest, decodeJwt, discover, env, isLoginPage, launchBrowser,
  logIn, newContext, oidc, params, recordDocuments, startCallbackServer, waitForCallback,
  T, closeBounded, closePage,
} from './helpers.mjs';

const SCOPE = 'openid profile read';

describe('authorization code flow in the browser', () => {
  let browser, context, cb, config, redirectUri;
  /** The first login's ID token claims (for the SSO test). */
  let first;

  before(async () => {
    browser = await launchBrowser();
    context = await newContext(browser);
    cb = await startCallbackServer();
    redirectUri = `${cb.base}/cb`;
    config = await discover(env.webClient.id, env.webClient.secret);
  });
  after(async () => {
    await closeBounded(browser);
    await cb?.close();
  });

  test('discovery advertises OpenID Connect', T, () => {
    const md = config.serverMetadata();
    assert.equal(md.issuer, env.idpUrl);
    assert.equal(md.authorization_endpoint, AUTHORISE);
    assert.ok(md.userinfo_endpoint?.startsWith(env.idpUrl), 'userinfo_endpoint');
    assert.ok(md.end_session_endpoint?.startsWith(env.idpUrl), 'end_session_endpoint');
    assert.ok(md.response_types_supported.includes('code'));
    assert.ok(md.scopes_supported?.includes('openid'), 'scopes_supported has openid');
    assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
    assert.equal(md.authorization_response_iss_parameter_supported, true);
  });

  test('log in, consent, code, token exchange with ID token, userinfo, refresh', T, async () => {
    const req = await codeRequest(config, redirectUri, SCOPE);
    const page = await context.newPage();
    await page.goto(req.url.href);
    assert.equal(new URL(page.url()).origin, IDP_ORIGIN);
    await logIn(page, { screenshot: 'login.png' });

    // Consent: the scopes are listed; allow.
    await page.locator('button[name=consent][value=allow]').waitFor({ state: 'visible' });
    await page.screenshot({ path: artifact('consent.png'), fullPage: true });
    assert.match(await page.locator('h1').first().textContent(), /Allow/);
    const listed = (await page.locator('code').allTextContents()).map((s) => s.trim());
    for (const s of SCOPE.split(' ')) assert.ok(listed.includes(s), `consent lists ${s}: ${listed}`);
    assert.equal(await page.locator('button[name=consent][value=deny]').count(), 1);
    await page.click('button[name=consent][value=allow]');

    const callback = await waitForCallback(page, cb.base);
    const got = params(callback).query;
    assert.ok(got.code, `a code in ${callback}`);
    assert.equal(got.state, req.state);
    assert.equal(got.iss, env.idpUrl);
    assert.ok(callback.startsWith(`${redirectUri}?`));

    // openid-client checks state, iss, PKCE, the ID token's signature, iss, aud, exp, nonce, at_hash.
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
      idTokenExpected: true,
    });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.refresh_token, 'a refresh token');
    const claims = tokens.claims();
    assert.equal(claims.iss, env.idpUrl);
    assert.equal(claims.nonce, req.nonce);
    assert.ok([claims.aud].flat().includes(env.webClient.id));
    assert.equal(typeof claims.auth_time, 'number');
    assert.ok(Math.abs(claims.auth_time - Date.now() / 1000) < 120, 'auth_time is now');
    assert.equal(typeof claims.sid, 'string');
    assert.ok(claims.amr?.includes('pwd'), `amr ${claims.amr}`);
    assert.equal(typeof claims.at_hash, 'string');
    assert.equal(decodeJwt(tokens.id_token).header.alg, 'ES256');

    const at = decodeJwt(tokens.access_token);
    assert.equal(at.header.typ, 'at+jwt');
    assert.equal(at.payload.sub, claims.sub);
    assert.equal(at.payload.client_id, env.webClient.id);
    for (const s of SCOPE.split(' ')) assert.ok(at.payload.scope.split(' ').includes(s), `scope ${at.payload.scope}`);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, claims.sub);
    if (env.user.name) assert.equal(info.name, env.user.name);
    assert.equal(info.email, undefined, 'no email without the email scope');

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token && refreshed.access_token !== tokens.access_token);
    assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'rotated');
    assert.equal(decodeJwt(refreshed.access_token).payload.sub, claims.sub);
    first = claims;
    await closePage(page);
  });

  test('second authorise in the same browser: no password, consent remembered', T, async () => {
    assert.ok(first, 'needs the first login');
    const req = await codeRequest(config, redirectUri, SCOPE);
    const page = await context.newPage();
    const docs = recordDocuments(page);
    await page.goto(req.url.href, { waitUntil: 'commit' });
    const callback = await waitForCallback(page, cb.base);
    // The IDP answered the authorise request itself with a redirect to the client: no page shown.
    const shown = docs.filter((d) => new URL(d.url).origin === IDP_ORIGIN && d.status === 200);
    assert.deepEqual(shown, [], 'no IDP page was shown');
    assert.equal(docs[0]?.status, 303, JSON.stringify(docs));
    assert.ok(docs[0].location?.startsWith(`${redirectUri}?`), JSON.stringify(docs));
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    assert.equal(claims.sub, first.sub);
    assert.equal(claims.auth_time, first.auth_time, 'the same sign-in');
    assert.equal(typeof claims.sid, 'string');
    await closePage(page);
  });

  test('prompt=login asks for the password again', T, async () => {
    assert.ok(first, 'needs the first login');
    const req = await codeRequest(config, redirectUri, SCOPE, { prompt: 'login' });
    const page = await context.newPage();
    const res = await page.goto(req.url.href);
    assert.equal(res.status(), 200);
    assert.equal(new URL(page.url()).origin, IDP_ORIGIN);
    assert.ok(await isLoginPage(page), 'the login page');
    await logIn(page);
    const callback = await waitForCallback(page, cb.base); // consent remembered
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
      idTokenExpected: true,
    });
    assert.equal(tokens.claims().sub, first.sub);
    assert.ok(tokens.claims().auth_time >= first.auth_time);
    await closePage(page);
  });

  test('max_age older than the sign-in asks for the password again', T, async () => {
    assert.ok(first, 'needs the first login');
    await new Promise((r) => setTimeout(r, 2100));
    const req = await codeRequest(config, redirectUri, SCOPE, { max_age: '1' });
    const page = await context.newPage();
    await page.goto(req.url.href);
    assert.equal(new URL(page.url()).origin, IDP_ORIGIN);
    assert.ok(await isLoginPage(page), 'the login page');
    assert.deepEqual(cb.hits.filter((h) => h.includes(req.state)), []);
    await closePage(page);
  });

  test('prompt=consent asks again; consent denied: redirected with error=access_denied and the state', T, async () => {
    const ctx = await newContext(browser);
    try {
      const req = await codeRequest(config, redirectUri, SCOPE, { prompt: 'consent' });
      const page = await ctx.newPage();
      await page.goto(req.url.href);
      await logIn(page);
      await page.locator('button[name=consent][value=deny]').waitFor({ state: 'visible' });
      await page.click('button[name=consent][value=deny]');
      const got = params(await waitForCallback(page, cb.base)).query;
      assert.equal(got.error, 'access_denied');
      assert.equal(got.state, req.state);
      assert.equal(got.iss, env.idpUrl);
      assert.equal(got.code, undefined);
      assert.deepEqual(ctx.offLoopback, []);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('first-party public client: no consent page; PKCE code flow without a secret', T, async () => {
    const ctx = await newContext(browser);
    try {
      const pub = await discover(env.publicClient.id, undefined);
      const req = await codeRequest(pub, redirectUri, SCOPE);
      const page = await ctx.newPage();
      await page.goto(req.url.href);
      await logIn(page);
      const callback = await waitForCallback(page, cb.base);
      const got = params(callback).query;
      assert.ok(got.code);
      assert.equal(got.state, req.state);
      const tokens = await oidc.authorizationCodeGrant(pub, new URL(callback), {
        pkceCodeVerifier: req.verifier,
        expectedState: req.state,
        expectedNonce: req.nonce,
        idTokenExpected: true,
      });
      assert.ok([tokens.claims().aud].flat().includes(env.publicClient.id));
      assert.deepEqual(ctx.offLoopback, []);
    } finally {
      await closeBounded(ctx);
    }
  });
});
