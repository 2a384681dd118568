// DPoP (RFC 9449) with a real DPoP client: openid-client makes the keys and proofs (and fetches
// the IDP's server nonce and retries when told `use_dpop_nonce`). Tokens come DPoP-bound from
// client_credentials and from the code flow in Chromium (`dpop_jkt` on the authorization
// request); `cnf.jkt` is checked against the key's RFC 7638 thumbprint computed here; the bound
// refresh token refreshes with its key and is refused with another one or none; userinfo takes the
// bound token with a proof.
//
// Calls through the gateway (the filter's half of DPoP) are written below but skipped unless
// GATEWAY_URL names a gateway in front of this IDP that enforces DPoP.
import assert from 'node:assert/strict';
import { createHash, webcrypto } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  codeRequest, decodeJwt, discover, env, launchBrowser, logIn, newContext, oidc, params,
  startCallbackServer, waitForCallback, T, closeBounded, closePage,
} from './helpers.mjs';

const SCOPE = 'openid profile read';

/** RFC 7638 §3: the required members in lexicographic order, no whitespace, SHA-256, base64url. */
async function thumbprint(publicKey) {
  const jwk = await webcrypto.subtle.exportKey('jwk', publicKey);
  const members = {
    EC: ['crv', 'kty', 'x', 'y'],
    OKP: ['crv', 'kty', 'x'],
    RSA: ['e', 'kty', 'n'],
  }[jwk.kty];
  assert.ok(members, `a key type with a thumbprint: ${jwk.kty}`);
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** A fresh key pair and openid-client's DPoP handle for it. */
async function dpopKey(config, alg = 'ES256') {
  const keyPair = await oidc.randomDPoPKeyPair(alg);
  return { keyPair, handle: oidc.getDPoPHandle(config, keyPair), jkt: await thumbprint(keyPair.publicKey) };
}

/** How many token requests the IDP answered with `use_dpop_nonce` (its Prometheus counter). */
async function nonceRefusals() {
  const res = await fetch(`${env.idpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const line = (await res.text()).split('\n').find((l) => l.startsWith('idp_token_errors_total{error="use_dpop_nonce"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Runs `promise`, expecting the IDP's OAuth error `code`. */
async function refusedWith(promise, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.error ?? e.cause?.error, code, `${e.name}: ${e.message}`);
    return true;
  });
}

describe('DPoP-bound tokens from the IDP (openid-client)', () => {
  let browser, cb, redirectUri;

  before(async () => {
    browser = await launchBrowser();
    cb = await startCallbackServer();
    redirectUri = `${cb.base}/cb`;
  });
  after(async () => {
    await closeBounded(browser);
    await cb?.close();
  });

  test('discovery advertises the proof algorithms', T, async () => {
    const config = await discover(env.dpopServiceClient.id, env.dpopServiceClient.secret);
    assert.deepEqual(config.serverMetadata().dpop_signing_alg_values_supported, ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']);
  });

  for (const alg of ['ES256', 'EdDSA']) {
    test(`client_credentials with an ${alg} key: a DPoP-bound access token (nonce fetched and retried)`, T, async () => {
      const config = await discover(env.dpopServiceClient.id, env.dpopServiceClient.secret);
      const key = await dpopKey(config, alg);
      const refusedBefore = await nonceRefusals();
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' }, { DPoP: key.handle });
      // this client's proofs need a server nonce: the first proof had none, openid-client took the
      // DPoP-Nonce of the use_dpop_nonce answer and retried
      assert.equal(await nonceRefusals(), refusedBefore + 1, 'one use_dpop_nonce answer');
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      const at = decodeJwt(tokens.access_token);
      assert.equal(at.header.typ, 'at+jwt');
      assert.deepEqual(at.payload.cnf, { jkt: key.jkt });
      assert.equal(await key.handle.calculateThumbprint(), key.jkt, "openid-client's own thumbprint agrees");

      // introspection reports the binding
      const info = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.equal(info.active, true);
      assert.equal(info.token_type, 'DPoP');
      assert.deepEqual(info.cnf, { jkt: key.jkt });
    });
  }

  test('a client with dpop_bound_access_tokens gets nothing without a proof', T, async () => {
    const config = await discover(env.dpopServiceClient.id, env.dpopServiceClient.secret);
    await refusedWith(oidc.clientCredentialsGrant(config, { scope: 'read' }), 'invalid_dpop_proof');
  });

  test('code flow in Chromium with dpop_jkt: bound tokens, userinfo with a proof, bound refresh token', T, async () => {
    const config = await discover(env.dpopPublicClient.id, undefined);
    const key = await dpopKey(config);
    const ctx = await newContext(browser);
    try {
      const req = await codeRequest(config, redirectUri, SCOPE, { dpop_jkt: key.jkt });
      assert.equal(req.url.searchParams.get('dpop_jkt'), key.jkt);
      const page = await ctx.newPage();
      await page.goto(req.url.href);
      await logIn(page);
      const callback = await waitForCallback(page, cb.base);
      assert.ok(params(callback).query.code, `a code in ${callback}`);
      await closePage(page);

      const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
        pkceCodeVerifier: req.verifier,
        expectedState: req.state,
        expectedNonce: req.nonce,
        idTokenExpected: true,
      }, undefined, { DPoP: key.handle });
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      assert.deepEqual(decodeJwt(tokens.access_token).payload.cnf, { jkt: key.jkt });
      assert.ok(tokens.refresh_token, 'a refresh token');
      const sub = tokens.claims().sub;

      // userinfo: Authorization: DPoP with a proof carrying ath (RFC 9449 §7)
      const info = await oidc.fetchUserInfo(config, tokens.access_token, sub, { DPoP: key.handle });
      assert.equal(info.sub, sub);
      // the bound token as a plain bearer token is refused
      const bearer = await fetch(config.serverMetadata().userinfo_endpoint, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(bearer.status, 401);
      assert.match(bearer.headers.get('www-authenticate'), /^DPoP /);

      // the refresh token is bound to the key: another key, or none, is refused...
      const other = await dpopKey(config);
      await refusedWith(oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: other.handle }), 'invalid_dpop_proof');
      await refusedWith(oidc.refreshTokenGrant(config, tokens.refresh_token), 'invalid_dpop_proof');
      // ...and did not use it up: its own key refreshes, and the new tokens are bound again
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: key.handle });
      assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
      assert.deepEqual(decodeJwt(refreshed.access_token).payload.cnf, { jkt: key.jkt });
      assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'rotated');
      await refusedWith(oidc.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: other.handle }), 'invalid_dpop_proof');
      assert.deepEqual(ctx.offLoopback, []);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('a code asked for with dpop_jkt cannot be redeemed with another key', T, async () => {
    const config = await discover(env.dpopPublicClient.id, undefined);
    const key = await dpopKey(config);
    const ctx = await newContext(browser);
    try {
      const req = await codeRequest(config, redirectUri, SCOPE, { dpop_jkt: key.jkt });
      const page = await ctx.newPage();
      await page.goto(req.url.href);
      await logIn(page);
      const callback = await waitForCallback(page, cb.base);
      await closePage(page);
      const checks = { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce, idTokenExpected: true };
      const other = await dpopKey(config);
      await refusedWith(oidc.authorizationCodeGrant(config, new URL(callback), checks, undefined, { DPoP: other.handle }), 'invalid_dpop_proof');
      // the refusal left the code unused: its own key redeems it
      const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), checks, undefined, { DPoP: key.handle });
      assert.deepEqual(decodeJwt(tokens.access_token).payload.cnf, { jkt: key.jkt });
    } finally {
      await closeBounded(ctx);
    }
  });

  const gateway = process.env.GATEWAY_URL;
  test('through the gateway: the bound token with its proofs; as Bearer or with another key refused', {
    ...T,
    skip: gateway ? false : 'GATEWAY_URL is not set (the gateway half of DPoP is run by the integrator)',
  }, async () => {
    const config = await discover(env.dpopServiceClient.id, env.dpopServiceClient.secret);
    const key = await dpopKey(config);
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' }, { DPoP: key.handle });
    const api = new URL(`${gateway}/api/hello`);
    const ok = await oidc.fetchProtectedResource(config, tokens.access_token, api, 'GET', undefined, undefined, { DPoP: key.handle });
    assert.equal(ok.status, 200);
    const bearer = await fetch(api, { headers: { authorization: `Bearer ${tokens.access_token}` }, signal: AbortSignal.timeout(10_000) });
    assert.equal(bearer.status, 401);
    const other = await dpopKey(config);
    const stolen = await oidc.fetchProtectedResource(config, tokens.access_token, api, 'GET', undefined, undefined, { DPoP: other.handle })
      .catch((e) => e.response ?? e);
    assert.equal(stolen.status, 401);
    assert.match(stolen.headers.get('www-authenticate') ?? '', /DPoP/);

    // A proof the client really sent, replayed as it was: refused (its jti was seen).
    let sent;
    config[oidc.customFetch] = (url, options) => {
      const h = Object.fromEntries(Object.entries(options.headers).map(([k, v]) => [k.toLowerCase(), v]));
      sent = { authorization: h.authorization, dpop: h.dpop };
      return fetch(url, options);
    };
    const again = await oidc.fetchProtectedResource(config, tokens.access_token, api, 'GET', undefined, undefined, { DPoP: key.handle });
    assert.equal(again.status, 200);
    assert.ok(sent?.dpop, 'the proof openid-client sent');
    const replayed = await fetch(api, { headers: sent, signal: AbortSignal.timeout(10_000) });
    assert.equal(replayed.status, 401);
    assert.match(replayed.headers.get('www-authenticate') ?? '', /invalid_dpop_proof/);
  });
});
