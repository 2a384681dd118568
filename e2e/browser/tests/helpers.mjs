// Shared by the browser tests: the environment e2e/tests/e2e/browser.rs passes, Debian's chromium
// through playwright-core (loopback only), a callback server on 127.0.0.1, and small page helpers.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as oidc from 'openid-client';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through e2e/tests/e2e/browser.rs (scripts/test)`);
  return value;
}

export const env = {
  idpUrl: required('IDP_URL'),
  chromium: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
  artifacts: required('ARTIFACTS'),
  // confidential, consent required, authorization_code + refresh_token
  webClient: { id: required('WEB_CLIENT_ID'), secret: required('WEB_CLIENT_SECRET') },
  // public, implicit allowed, first party (no consent)
  implicitClient: { id: required('IMPLICIT_CLIENT_ID') },
  // confidential service: client_credentials, password, refresh_token
  serviceClient: { id: required('SERVICE_CLIENT_ID'), secret: required('SERVICE_CLIENT_SECRET') },
  // public (no secret, PKCE required), first party, implicit NOT allowed
  publicClient: { id: required('PUBLIC_CLIENT_ID') },
  // DPoP (RFC 9449): confidential, client_credentials, proofs with a server nonce mandatory
  dpopServiceClient: { id: required('DPOP_SERVICE_CLIENT_ID'), secret: required('DPOP_SERVICE_CLIENT_SECRET') },
  // DPoP: public, first party, code + refresh, proofs mandatory (bound refresh tokens)
  dpopPublicClient: { id: required('DPOP_PUBLIC_CLIENT_ID') },
  // reads the revocation feed
  gatewayClient: { id: required('GATEWAY_CLIENT_ID'), secret: required('GATEWAY_CLIENT_SECRET') },
  user: { username: required('USERNAME'), password: required('PASSWORD'), name: process.env.USER_NAME },
  // the one post-logout URI registered for the web client (exact match: a fixed port)
  postLogoutPort: Number(required('POST_LOGOUT_PORT')),
};
mkdirSync(env.artifacts, { recursive: true });

export const IDP_ORIGIN = new URL(env.idpUrl).origin;
export const AUTHORISE = `${env.idpUrl}/oauth2/authorise`;
/** Bounded waits everywhere. */
export const STEP_TIMEOUT = 15_000;
/** Options of every test: a hang fails that test, not the whole file. */
export const T = { timeout: 90_000 };

const t0 = Date.now();
/** A timestamped progress line on stderr (node's output is printed when the suite fails). */
export function step(message) {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(2)}s] ${message}\n`);
}

export function artifact(name) {
  return path.join(env.artifacts, name);
}

/** Debian's chromium, headless, reaching nothing but loopback. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: env.chromium,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox', // root in a container
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-extensions',
      '--metrics-recording-only',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
      '--proxy-server=direct://',
    ],
  });
}

/**
 * A browser context that may only talk to 127.0.0.1: any other request is aborted and recorded in
 * `context.offLoopback` (an attempted open redirect shows up there).
 */
export async function newContext(browser) {
  const context = await browser.newContext({ viewport: { width: 800, height: 700 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  context.offLoopback = [];
  await context.route(
    (url) => url.hostname !== '127.0.0.1',
    (route) => {
      context.offLoopback.push(route.request().url());
      return route.abort('blockedbyclient');
    },
  );
  return context;
}

/** A tiny HTTP server on 127.0.0.1 recording every request URL (the client's redirect URI). */
export async function startCallbackServer(port = 0) {
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end('<!doctype html><title>client</title><h1>client callback</h1>');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    hits,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/** OpenID client configuration from discovery (http is fine: loopback). */
export async function discover(clientId, secret) {
  return oidc.discovery(
    new URL(env.idpUrl),
    clientId,
    secret,
    secret === undefined ? oidc.None() : undefined,
    { execute: [oidc.allowInsecureRequests], timeout: 10 },
  );
}

/** An authorization URL (code flow, PKCE S256, state, nonce) and what is needed to finish it. */
export async function codeRequest(config, redirectUri, scope = 'openid profile read', extra = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

/** Query and fragment parameters of a URL. */
export function params(url) {
  const u = new URL(url);
  return {
    query: Object.fromEntries(u.searchParams),
    fragment: Object.fromEntries(new URLSearchParams(u.hash.replace(/^#/, ''))),
  };
}

export function isLoginPage(page) {
  return page.locator('input#username').isVisible();
}

/** Fills and submits the login form on the current page; waits for the next page. */
export async function logIn(page, { username = env.user.username, password = env.user.password, screenshot } = {}) {
  await page.locator('input#username').waitFor({ state: 'visible' });
  assert.equal(new URL(page.url()).origin, IDP_ORIGIN, 'the login page is served by the IDP');
  assert.equal(await page.locator('input[type=hidden][name=login_csrf]').count(), 1, 'a login_csrf field');
  await page.fill('input#username', username);
  await page.fill('input#password', password);
  if (screenshot) await page.screenshot({ path: artifact(screenshot), fullPage: true });
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.click('button[type=submit]'),
  ]);
}

export function isConsentPage(page) {
  return page.locator('button[name=consent][value=allow]').isVisible();
}

/** Waits until the browser is at `base` (a callback server) and returns the full URL. */
export async function waitForCallback(page, base) {
  await page.waitForURL((u) => u.href.startsWith(`${base}/`), { timeout: STEP_TIMEOUT, waitUntil: 'commit' });
  return page.url();
}

/**
 * After the login form: allows on the consent page if one is shown (consent is remembered per
 * user and client at the IDP, so whether it shows depends on earlier tests), then waits for the
 * callback and returns its URL.
 */
export async function consentIfAskedThenCallback(page, base) {
  const consent = page.locator('button[name=consent][value=allow]');
  const which = await Promise.race([
    page.waitForURL((u) => u.href.startsWith(`${base}/`), { timeout: STEP_TIMEOUT, waitUntil: 'commit' }).then(() => 'callback'),
    consent.waitFor({ state: 'visible', timeout: STEP_TIMEOUT }).then(() => 'consent'),
  ]);
  if (which === 'consent') await consent.click();
  return waitForCallback(page, base);
}

/** Main-frame document responses of a page (to see which pages were shown, and redirects). */
export function recordDocuments(page) {
  const docs = [];
  page.on('response', (res) => {
    const req = res.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      docs.push({ url: res.url(), status: res.status(), location: res.headers().location });
    }
  });
  return docs;
}

export async function errorPageText(page) {
  return {
    h1: (await page.locator('h1').first().textContent({ timeout: STEP_TIMEOUT })).trim(),
    error: (await page.locator('.error').first().textContent({ timeout: STEP_TIMEOUT })).trim(),
  };
}

/** The IDP's revocation feed (what gateways poll), read as the gateway client. */
export async function revocationFeed() {
  const { id, secret } = env.gatewayClient;
  const res = await fetch(`${env.idpUrl}/oauth2/revocations?since=0`, {
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, 'revocation feed');
  return res.json();
}

export function decodeJwt(jwt) {
  const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  return { header, payload };
}

/**
 * Closes a page without hanging: Chromium can acknowledge a close that races a navigation commit
 * and never close the target (crbug.com/536385539, playwright#42068), so first let the page
 * finish loading, then re-issue the close until it is closed (bounded).
 */
export async function closePage(page) {
  await page.waitForLoadState('load', { timeout: 5_000 }).catch(() => {});
  for (let attempt = 0; attempt < 5 && !page.isClosed(); attempt++) {
    await Promise.race([page.close().catch(() => {}), new Promise((r) => setTimeout(r, 1_000))]);
  }
  if (!page.isClosed()) step(`warning: page ${page.url()} did not close; its context closes it`);
}

/** Closes a context or browser, waiting at most `ms` (their pages are closed with them). */
export async function closeBounded(thing, ms = 15_000) {
  if (!thing) return;
  let timer;
  const outcome = await Promise.race([
    thing.close().then(() => 'closed', () => 'failed'),
    new Promise((r) => { timer = setTimeout(() => r('timed out'), ms); }),
  ]);
  clearTimeout(timer);
  if (outcome !== 'closed') step(`warning: close ${outcome}`);
}

export { oidc };
