// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) in a real browser, with the end
// session URL built by openid-client: the browser's SSO session and every token it gave end
// (refresh refused, introspection inactive, userinfo refused), the next authorise asks for the
// password; without id_token_hint the user confirms first; untrusted post-logout URIs are never
// redirected to.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  IDP_ORIGIN, STEP_TIMEOUT, artifact, codeRequest, consentIfAskedThenCallback, discover, env, errorPageText,
  decodeJwt, isLoginPage, launchBrowser, revocationFeed, step, logIn, newContext, oidc, params, recordDocuments, startCallbackServer,
  waitForCallback,
  T, closeBounded, closePage,
} from './helpers.mjs';

const SCOPE = 'openid profile read';

describe('logout at the IDP', () => {
  let browser, cb, postLogout, redirectUri, postLogoutUri, config, implicitConfig;

  before(async () => {
    browser = await launchBrowser();
    cb = await startCallbackServer();
    postLogout = await startCallbackServer(env.postLogoutPort);
    redirectUri = `${cb.base}/cb`;
    postLogoutUri = `${postLogout.base}/logged-out`;
    config = await discover(env.webClient.id, env.webClient.secret);
    implicitConfig = await discover(env.implicitClient.id, undefined);
  });
  after(async () => {
    await closeBounded(browser);
    await cb?.close();
    await postLogout?.close();
  });

  /** Signs in (password on the first call in a context), exchanges the code; returns the tokens. */
  async function signIn(ctx, { expectPassword }) {
    const req = await codeRequest(config, redirectUri, SCOPE);
    const page = await ctx.newPage();
    await page.goto(req.url.href, { waitUntil: 'commit' });
    let callback;
    if (expectPassword) {
      await logIn(page);
      callback = await consentIfAskedThenCallback(page, cb.base);
    } else {
      callback = await waitForCallback(page, cb.base);
    }
    await closePage(page);
    return oidc.authorizationCodeGrant(config, new URL(callback), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
      idTokenExpected: true,
    });
  }

  /** An implicit access token of the signed-in browser (another client, same SSO session). */
  async function implicitToken(ctx) {
    const page = await ctx.newPage();
    const url = new URL(implicitConfig.serverMetadata().authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'token', client_id: env.implicitClient.id, redirect_uri: redirectUri, scope: 'openid read', state: 'imp',
    }).toString();
    await page.goto(url.href, { waitUntil: 'commit' });
    const { fragment } = params(await waitForCallback(page, cb.base));
    await closePage(page);
    assert.ok(fragment.access_token, 'an implicit token without a password');
    return fragment.access_token;
  }

  async function expectEnded(tokenSets, implicitAccessToken) {
    for (const [i, tokens] of tokenSets.entries()) {
      step(`after logout: refresh ${i}`);
      await assert.rejects(
        oidc.refreshTokenGrant(config, tokens.refresh_token),
        (e) => e.error === 'invalid_grant',
        `refresh token ${i} refused with invalid_grant`,
      );
      step(`after logout: introspection ${i}`);
      const intro = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.equal(intro.active, false, `access token ${i} inactive`);
      step(`after logout: userinfo ${i}`);
      await assert.rejects(oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck), `userinfo refuses access token ${i}`);
    }
    if (implicitAccessToken) {
      step('after logout: userinfo (implicit)');
      await assert.rejects(oidc.fetchUserInfo(implicitConfig, implicitAccessToken, oidc.skipSubjectCheck), 'userinfo refuses the implicit token');
    }
  }

  async function expectPasswordAsked(ctx) {
    const req = await codeRequest(config, redirectUri, SCOPE);
    const page = await ctx.newPage();
    await page.goto(req.url.href);
    assert.equal(new URL(page.url()).origin, IDP_ORIGIN);
    assert.ok(await isLoginPage(page), 'the password is asked again');
    await closePage(page);
  }

  test('discovery has end_session_endpoint', T, () => {
    assert.ok(config.serverMetadata().end_session_endpoint?.startsWith(env.idpUrl));
  });

  test('with id_token_hint: back to the post-logout URI with state; every token of the session ended', T, async () => {
    const ctx = await newContext(browser);
    try {
      step('logout with hint: first sign-in');
      const first = await signIn(ctx, { expectPassword: true });
      step('logout with hint: second sign-in (SSO)');
      const second = await signIn(ctx, { expectPassword: false }); // SSO: another token session
      step('logout with hint: implicit token');
      const implicit = await implicitToken(ctx);
      step('logout with hint: introspection before');
      // Alive before the logout.
      assert.equal((await oidc.tokenIntrospection(config, second.access_token)).active, true);

      const state = oidc.randomState();
      const endUrl = oidc.buildEndSessionUrl(config, {
        id_token_hint: first.id_token,
        post_logout_redirect_uri: postLogoutUri,
        state,
      });
      const page = await ctx.newPage();
      const docs = recordDocuments(page);
      step('logout with hint: end session URL');
      await page.goto(endUrl.href, { waitUntil: 'commit' });
      await page.waitForURL((u) => u.href.startsWith(postLogoutUri), { timeout: STEP_TIMEOUT, waitUntil: 'commit' });
      const landed = params(page.url()).query;
      assert.equal(landed.state, state);
      assert.ok(docs.every((d) => d.status !== 200 || !d.url.startsWith(env.idpUrl)), `no confirmation page: ${JSON.stringify(docs)}`);
      assert.ok(postLogout.hits.some((h) => h.includes(`state=${state}`)));
      await closePage(page);

      await expectEnded([first, second], implicit);
      step('logout with hint: revocation feed');
      const feed = await revocationFeed();
      const revokedSids = new Set(feed.revoked.map((r) => r.sid).filter(Boolean));
      for (const [what, token] of [['first', first.access_token], ['second', second.access_token], ['implicit', implicit]]) {
        const { sid } = decodeJwt(token).payload;
        assert.ok(sid, `${what} access token has a sid`);
        assert.ok(revokedSids.has(sid), `${what} token's session ${sid} in the revocation feed: ${JSON.stringify(feed)}`);
      }
      step('logout with hint: password asked?');
      await expectPasswordAsked(ctx);
      assert.deepEqual(ctx.offLoopback, []);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('without id_token_hint: a confirmation page; confirming signs out', T, async () => {
    const ctx = await newContext(browser);
    try {
      const tokens = await signIn(ctx, { expectPassword: true });
      const page = await ctx.newPage();
      const res = await page.goto(config.serverMetadata().end_session_endpoint);
      assert.equal(res.status(), 200);
      assert.equal(new URL(page.url()).origin, IDP_ORIGIN);
      const confirm = page.locator('button[name=confirm][value=yes]');
      await confirm.waitFor({ state: 'visible' });
      await page.screenshot({ path: artifact('logout-confirm.png'), fullPage: true });

      // Not signed out merely by opening the page. (No authorise in this browser here: answering
      // one uses up the CSRF cookie this form needs.)
      assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, true);

      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), confirm.click()]);
      assert.equal(new URL(page.url()).origin, IDP_ORIGIN);
      assert.match(await page.locator('h1').first().textContent(), /Signed out/);
      await page.screenshot({ path: artifact('signed-out.png'), fullPage: true });
      await closePage(page);

      await expectEnded([tokens]);
      await expectPasswordAsked(ctx);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('without id_token_hint, with client_id and post_logout_redirect_uri: confirm, then redirected with state', T, async () => {
    const ctx = await newContext(browser);
    try {
      const tokens = await signIn(ctx, { expectPassword: true });
      const page = await ctx.newPage();
      const endUrl = oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: postLogoutUri, state: 'confirm-state' });
      assert.equal(endUrl.searchParams.get('client_id'), env.webClient.id);
      await page.goto(endUrl.href);
      const confirm = page.locator('button[name=confirm][value=yes]');
      await confirm.waitFor({ state: 'visible' });
      await confirm.click();
      await page.waitForURL((u) => u.href.startsWith(postLogoutUri), { timeout: STEP_TIMEOUT, waitUntil: 'commit' });
      assert.equal(params(page.url()).query.state, 'confirm-state');
      await closePage(page);
      await expectEnded([tokens]);
      await expectPasswordAsked(ctx);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('the confirmation form without its CSRF token: 400, still signed in', T, async () => {
    const ctx = await newContext(browser);
    try {
      const tokens = await signIn(ctx, { expectPassword: true });
      const page = await ctx.newPage();
      await page.goto(config.serverMetadata().end_session_endpoint);
      await page.locator('button[name=confirm][value=yes]').waitFor({ state: 'visible' });
      const fields = await page.$$eval('form input[type=hidden]', (inputs) => inputs.map((i) => [i.name, i.value]));
      const form = [...fields.filter(([k]) => k !== 'csrf' && !/csrf/i.test(k)), ['confirm', 'yes']];
      const res = await ctx.request.post(config.serverMetadata().end_session_endpoint, {
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: IDP_ORIGIN },
        data: new URLSearchParams(form).toString(),
        maxRedirects: 0,
        timeout: 10_000,
      });
      assert.equal(res.status(), 400);
      assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, true, 'still valid');
      await signIn(ctx, { expectPassword: false });
      await closePage(page);
    } finally {
      await closeBounded(ctx);
    }
  });

  test('an unregistered post_logout_redirect_uri: error page, no redirect', T, async () => {
    const ctx = await newContext(browser);
    try {
      const tokens = await signIn(ctx, { expectPassword: true });
      for (const uri of ['https://evil.example/', `http://127.0.0.1:${env.postLogoutPort}/other`, `http://127.0.0.1.evil.example:${env.postLogoutPort}/logged-out`]) {
        const page = await ctx.newPage();
        const hits = postLogout.hits.length;
        const endUrl = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: uri, state: 's' });
        const res = await page.goto(endUrl.href);
        assert.equal(new URL(page.url()).origin, IDP_ORIGIN, `${uri}: stays on the IDP`);
        assert.equal(res.status(), 400, uri);
        assert.ok((await errorPageText(page)).error.length > 0);
        assert.equal(postLogout.hits.length, hits);
        await closePage(page);
      }
      assert.deepEqual(ctx.offLoopback, []);
    } finally {
      await closeBounded(ctx);
    }
  });
});
