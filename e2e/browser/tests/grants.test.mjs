// openid-client (a certified client nobody here wrote) against the running IDP, without a
// browser: client_credentials, password, refresh (rotation and reuse), introspection and
// revocation (RFC 7009, RFC 7662), each through the library's own request and response checks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { T, env } from './helpers.mjs';

async function service() {
  return oidc.discovery(new URL(env.idpUrl), env.serviceClient.id, env.serviceClient.secret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

async function refusedWith(promise, error) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.error ?? e.cause?.error, error, `${e}`);
    return true;
  });
}

describe('grants through openid-client', () => {
  test('client_credentials: a bearer token for the client itself', T, async () => {
    const config = await service();
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read' });
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(tokens.expires_in > 0 && tokens.expires_in <= 300);
    assert.equal(tokens.refresh_token, undefined);
    const c = claims(tokens.access_token);
    assert.equal(c.sub, `client:${env.serviceClient.id}`);
    assert.equal(c.scope, 'read');
    assert.equal(c.iss, env.idpUrl);
    // a scope the client may not have is refused
    await refusedWith(oidc.clientCredentialsGrant(config, { scope: 'admin' }), 'invalid_scope');
  });

  test('password, refresh with rotation, reuse ends the session, introspection, revocation', T, async () => {
    const config = await service();
    const first = await oidc.genericGrantRequest(config, 'password', {
      username: env.user.username,
      password: env.user.password,
      scope: 'read write',
    });
    assert.ok(first.access_token && first.refresh_token);
    assert.deepEqual(claims(first.access_token).amr, ['pwd']);

    let info = await oidc.tokenIntrospection(config, first.access_token);
    assert.equal(info.active, true);
    assert.equal(info.client_id, env.serviceClient.id);
    assert.equal(info.scope, 'read write');

    // refresh narrows the scope and rotates the refresh token
    const second = await oidc.refreshTokenGrant(config, first.refresh_token, { scope: 'read' });
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal(claims(second.access_token).scope, 'read');
    assert.equal(claims(second.access_token).sid, claims(first.access_token).sid);
    // widening is refused
    await refusedWith(oidc.refreshTokenGrant(config, second.refresh_token, { scope: 'read write admin' }), 'invalid_scope');

    // reusing the rotated refresh token ends the whole session
    await refusedWith(oidc.refreshTokenGrant(config, first.refresh_token), 'invalid_grant');
    await refusedWith(oidc.refreshTokenGrant(config, second.refresh_token), 'invalid_grant');
    info = await oidc.tokenIntrospection(config, second.access_token);
    assert.equal(info.active, false);

    // a new login; revoking its access token (RFC 7009) ends it too
    const third = await oidc.genericGrantRequest(config, 'password', {
      username: env.user.username,
      password: env.user.password,
    });
    assert.equal((await oidc.tokenIntrospection(config, third.access_token)).active, true);
    await oidc.tokenRevocation(config, third.access_token, { token_type_hint: 'access_token' });
    assert.equal((await oidc.tokenIntrospection(config, third.access_token)).active, false);
    await refusedWith(oidc.refreshTokenGrant(config, third.refresh_token), 'invalid_grant');
    // revoking an unknown token is not an error (RFC 7009 §2.2)
    await oidc.tokenRevocation(config, 'not-a-token');
  });

  test('a wrong password and a wrong client secret are refused', T, async () => {
    const config = await service();
    await refusedWith(
      oidc.genericGrantRequest(config, 'password', { username: env.user.username, password: 'wrong-password' }),
      'invalid_grant',
    );
    const wrong = await oidc.discovery(new URL(env.idpUrl), env.serviceClient.id, 'wrong-secret-0123456789abcdef012345', undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    // 401 with a Basic challenge (RFC 6749 §5.2) and invalid_client in the body
    let caught;
    try {
      await oidc.clientCredentialsGrant(wrong);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof oidc.WWWAuthenticateChallengeError, `${caught}`);
    assert.equal(caught.status, 401);
    assert.equal(caught.cause[0].scheme, 'basic');
    assert.equal((await caught.response.json()).error, 'invalid_client');
  });
});
