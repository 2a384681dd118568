// The implicit flow (response_type=token) in a real browser: the token comes in the URL fragment
// (never sent to the client's server), short-lived, without a refresh token, with the state;
// clients not allowed to use it are sent back with unauthorized_client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AUTHORISE, decodeJwt, discover, env, launchBrowser, logIn, newContext, oidc, params,
  startCallbackServer, waitForCallback,
  T, closeBounded, closePage,
} from './helpers.mjs';

function implicitUrl(clientId, redirectUri, extra = {}) {
  const url = new URL(AUTHORISE);
  const query = { response_type: 'token', client_id: clientId, redirect_uri: redirectUri, scope: 'openid read', ...extra };
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  return url.href;
}

describe('implicit flow in the browser', () => {
  let browser, context, cb, redirectUri, config;

  before(async () => {
    browser = await launchBrowser();
    context = await newContext(browser);
    cb = await startCallbackServer();
    redirectUri = `${cb.base}/cb`;
    config = await discover(env.implicitClient.id, undefined);
  });
  after(async () => {
    await closeBounded(browser);
    await cb?.close();
  });

  test('discovery lists response_type token', T, () => {
    assert.ok(config.serverMetadata().response_types_supported.includes('token'));
  });

  test('token in the fragment: no refresh token, expires_in <= 300, state echoed', T, async () => {
    const state = oidc.randomState();
    const page = await context.newPage();
    await page.goto(implicitUrl(env.implicitClient.id, redirectUri, { state }));
    await logIn(page);
    const callback = await waitForCallback(page, cb.base);
    const { query, fragment } = params(callback);
    assert.deepEqual(query, {}, 'nothing in the query');
    assert.ok(fragment.access_token, `a token in the fragment: ${callback}`);
    assert.equal(fragment.token_type.toLowerCase(), 'bearer');
    assert.equal(fragment.state, state);
    assert.equal(fragment.iss, env.idpUrl);
    assert.equal(fragment.refresh_token, undefined, 'no refresh token');
    assert.equal(fragment.code, undefined);
    assert.equal(fragment.id_token, undefined, 'response_type=token gives no ID token');
    const expiresIn = Number(fragment.expires_in);
    assert.ok(expiresIn > 0 && expiresIn <= 300, `expires_in ${fragment.expires_in}`);
    // The fragment never reaches the client's server.
    assert.ok(cb.hits.length > 0);
    assert.ok(cb.hits.every((h) => !h.includes(fragment.access_token)), 'the token was not sent to the server');

    const at = decodeJwt(fragment.access_token);
    assert.equal(at.header.typ, 'at+jwt');
    assert.equal(at.payload.client_id, env.implicitClient.id);
    assert.ok(at.payload.exp - at.payload.iat <= 300, 'lives at most 5 minutes');
    const info = await oidc.fetchUserInfo(config, fragment.access_token, at.payload.sub);
    assert.equal(info.sub, at.payload.sub);
    await closePage(page);
  });

  test('second implicit request in the same browser: no password', T, async () => {
    const page = await context.newPage();
    await page.goto(implicitUrl(env.implicitClient.id, redirectUri, { state: 'again' }), { waitUntil: 'commit' });
    const { fragment } = params(await waitForCallback(page, cb.base));
    assert.ok(fragment.access_token);
    assert.equal(fragment.state, 'again');
    await closePage(page);
  });

  test('implicit without state: refused in the fragment', T, async () => {
    const page = await context.newPage();
    await page.goto(implicitUrl(env.implicitClient.id, redirectUri), { waitUntil: 'commit' });
    const { query, fragment } = params(await waitForCallback(page, cb.base));
    assert.equal(fragment.error, 'invalid_request', JSON.stringify({ query, fragment }));
    assert.equal(fragment.access_token, undefined);
    assert.equal(query.access_token, undefined);
    await closePage(page);
  });

  test('clients not allowed implicit: unauthorized_client in the fragment, state echoed', T, async () => {
    for (const clientId of [env.publicClient.id, env.webClient.id]) {
      const ctx = await newContext(browser);
      try {
        const page = await ctx.newPage();
        await page.goto(implicitUrl(clientId, redirectUri, { state: `no-implicit-${clientId}` }), { waitUntil: 'commit' });
        const { query, fragment } = params(await waitForCallback(page, cb.base));
        assert.equal(fragment.error, 'unauthorized_client', `${clientId}: ${JSON.stringify({ query, fragment })}`);
        assert.equal(fragment.state, `no-implicit-${clientId}`);
        assert.equal(fragment.iss, env.idpUrl);
        assert.equal(fragment.access_token, undefined);
        assert.equal(query.error, undefined, 'not in the query');
        assert.deepEqual(ctx.offLoopback, []);
      } finally {
        await closeBounded(ctx);
      }
    }
  });

  test('an implicit-only client cannot use the code flow: unauthorized_client in the query', T, async () => {
    const ctx = await newContext(browser);
    try {
      const page = await ctx.newPage();
      const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
      await page.goto(implicitUrl(env.implicitClient.id, redirectUri, {
        response_type: 'code', state: 'code-for-implicit', code_challenge: challenge, code_challenge_method: 'S256',
      }), { waitUntil: 'commit' });
      const { query } = params(await waitForCallback(page, cb.base));
      assert.equal(query.error, 'unauthorized_client');
      assert.equal(query.state, 'code-for-implicit');
    } finally {
      await closeBounded(ctx);
    }
  });
});
