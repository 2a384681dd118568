// A real third-party OpenID Provider for the end-to-end tests: node `oidc-provider` (panva),
// in memory, on 127.0.0.1. Started by e2e/src/oidc_provider.rs; TEST USE ONLY (dev login that
// accepts any name and password, loopback back-channel calls allowed, a test-only control API).
//
//   node op.mjs [PORT]            PORT (or OP_PORT): 0 (default) picks a free port
//
// Environment:
//   OP_PORT                        the port, when not given as argv[2]
//   OP_ACCESS_TOKEN_TTL            access token lifetime in seconds (default 300)
//   OP_BACKCHANNEL_LOGOUT_URI      the `webapp` client's backchannel_logout_uri (none when unset)
//
// Prints `OP_READY http://127.0.0.1:PORT` on stdout once it listens; that URL is the issuer.
// Each back-channel logout attempt is logged on stdout (and stderr) as `OP_BACKCHANNEL ok|error …`.
//
// Clients (client_secret_basic):
//   gateway / gateway-secret-0123456789abcdef   introspection (JSON or RFC 9701 JWT), revocation
//   service / service-secret-0123456789abcdef   client_credentials for the resources below
//   webapp  / webapp-secret-0123456789abcdef    authorization_code + PKCE S256 + refresh_token
// Resources (resourceIndicators; scope `api`):
//   urn:gateway:es256   JWT access tokens signed ES256 (the default resource)
//   urn:gateway:rs256   JWT access tokens signed RS256
//   urn:gateway:opaque  opaque access tokens (introspectable, revocable)
// Test-only endpoints:
//   GET  /test/counters   {"introspection": N, "revocation": N, "introspection_failing": bool}
//   POST /test/fail       toggles "introspection answers 503" (?on=1 / ?on=0 set it); answers the state

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const portArg = process.argv[2] ?? process.env.OP_PORT ?? '0';
const port = Number.parseInt(portArg, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`op.mjs: invalid port ${JSON.stringify(portArg)}`);
  process.exit(2);
}
const accessTokenTtl = Number.parseInt(process.env.OP_ACCESS_TOKEN_TTL ?? '300', 10);
if (!Number.isInteger(accessTokenTtl) || accessTokenTtl <= 0) {
  console.error(`op.mjs: invalid OP_ACCESS_TOKEN_TTL ${JSON.stringify(process.env.OP_ACCESS_TOKEN_TTL)}`);
  process.exit(2);
}
const backchannelLogoutUri = process.env.OP_BACKCHANNEL_LOGOUT_URI || undefined;

const RESOURCES = {
  'urn:gateway:es256': {
    scope: 'api', audience: 'urn:gateway:es256', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } },
  },
  'urn:gateway:rs256': {
    scope: 'api', audience: 'urn:gateway:rs256', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
  },
  'urn:gateway:opaque': { scope: 'api', audience: 'urn:gateway:opaque', accessTokenFormat: 'opaque' },
};
const DEFAULT_RESOURCE = 'urn:gateway:es256';

// Fresh signing keys at every start: one RSA 2048 (RS256, also the ID token default) and one P-256.
function privateJwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}` };
}
const keys = [
  privateJwk('rsa', { modulusLength: 2048 }, 'RS256'),
  privateJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
];

// Test-only state behind /test/*.
const counters = { introspection: 0, revocation: 0 };
let introspectionFailing = false;

function log(line) {
  // stdout as documented; stderr too, because the Rust harness keeps stderr in the OP's log file
  console.log(line);
  console.error(line);
}

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  const issuer = `http://127.0.0.1:${actual}`;

  const configuration = {
    adapter: undefined, // the built-in in-memory adapter
    jwks: { keys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // client `scope` metadata must be a subset of these (`api` is the resource servers' scope)
    scopes: ['openid', 'offline_access', 'api'],
    // the dev account store (any login name is an account) is the default findAccount
    clients: [
      {
        client_id: 'gateway',
        client_secret: 'gateway-secret-0123456789abcdef',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        // RFC 9701: a JWT answer when asked with Accept: application/token-introspection+jwt
        introspection_signed_response_alg: 'RS256',
      },
      {
        client_id: 'service',
        client_secret: 'service-secret-0123456789abcdef',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api',
      },
      {
        client_id: 'webapp',
        client_secret: 'webapp-secret-0123456789abcdef',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
        scope: 'openid offline_access api',
        ...(backchannelLogoutUri ? {
          backchannel_logout_uri: backchannelLogoutUri,
          backchannel_logout_session_required: true,
        } : {}),
      },
    ],
    pkce: { required: () => true }, // S256 only (the default methods)
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
    features: {
      devInteractions: { enabled: true },
      // lets a client ask `claims={"id_token":{"sid":null}}`: without it (or a back-channel logout
      // URI with session_required) neither the ID token nor the tokens carry the per-client sid
      claimsParameter: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: {
        enabled: true,
        // the gateway revokes the tokens of every client; the others only their own
        allowedPolicy: async (ctx, client, token) => client.clientId === 'gateway' || token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => client.clientId === 'gateway' || token.clientId === client.clientId,
      },
      jwtIntrospection: { enabled: true },
      backchannelLogout: { enabled: true },
      dPoP: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf ?? DEFAULT_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          const info = RESOURCES[resourceIndicator];
          if (!info) throw new errors.InvalidTarget();
          return structuredClone(info);
        },
      },
    },
    // user access tokens carry the session's per-client sid (as the ID token and the back-channel
    // logout token do), so that a gateway can match a logout to the tokens of that session. The
    // per-client sid is known only when the client has a back-channel logout URI with
    // session_required or asked for `sid` with the claims parameter; else the session's uid
    extraTokenClaims: async (ctx, token) => {
      if (!token.accountId) return undefined;
      const sid = token.sid ?? token.sessionUid;
      return sid ? { sid } : undefined;
    },
    // refresh tokens for every authorization code grant of a client allowed the refresh_token grant
    issueRefreshToken: async (ctx, client, source) => client.grantTypeAllowed('refresh_token')
      && (source.kind === 'AuthorizationCode' || source.scopes.has('offline_access')),
    // TESTS ONLY: since 9.7 oidc-provider passes its own undici dispatcher that refuses loopback and
    // private addresses (an SSRF guard). The tests' back-channel logout receivers listen on
    // 127.0.0.1, so the guard is dropped here. Never do this in a real deployment.
    fetch: (url, options) => {
      const opts = { ...options };
      delete opts.dispatcher;
      return globalThis.fetch(url, opts);
    },
  };

  const provider = new Provider(issuer, configuration);

  provider.on('backchannel.success', (ctx, client, accountId, sid) => {
    log(`OP_BACKCHANNEL ok client=${client.clientId} sub=${accountId} sid=${sid} uri=${client.backchannelLogoutUri}`);
  });
  provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
    log(`OP_BACKCHANNEL error client=${client.clientId} sub=${accountId} sid=${sid} uri=${client.backchannelLogoutUri}: ${err?.message ?? err}${err?.cause ? ` (cause: ${err.cause.message ?? err.cause})` : ''}`);
  });
  provider.on('server_error', (ctx, err) => {
    console.error(`server_error: ${err?.stack ?? err}`);
  });

  // Test-only counters and failure switch, in front of the provider's own routes.
  provider.use(async (ctx, next) => {
    if (ctx.path === '/test/counters' && ctx.method === 'GET') {
      ctx.body = { ...counters, introspection_failing: introspectionFailing };
      return;
    }
    if (ctx.path === '/test/fail' && ctx.method === 'POST') {
      const on = ctx.query.on;
      introspectionFailing = on === undefined ? !introspectionFailing : (on === '1' || on === 'true');
      ctx.body = { introspection_failing: introspectionFailing };
      return;
    }
    if (ctx.path === '/token/introspection') {
      counters.introspection += 1;
      if (introspectionFailing) {
        ctx.status = 503;
        ctx.body = { error: 'temporarily_unavailable', error_description: 'test mode: introspection fails' };
        return;
      }
    } else if (ctx.path === '/token/revocation') {
      counters.revocation += 1;
    }
    await next();
  });

  server.on('request', provider.callback());
  log(`OP_READY ${issuer}`);
});

server.on('error', (err) => {
  console.error(`op.mjs: ${err.message}`);
  process.exit(1);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
