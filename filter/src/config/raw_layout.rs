//! The raw configuration structs as [`reader`](super::reader) reads them: per struct its JSON
//! field names and types in declaration order (what `#[derive(Deserialize)]` sees), and a builder
//! that takes the fields read in that same order. `tests::every_configuration_reads_as_derived`
//! (config/reader_tests.rs) holds them to the derives.

use super::backchannel::RawBackchannelLogout;
use super::discovery::RawDiscovery;
use super::hub::RawHub;
use super::introspection::{IntrospectMode, RawIntrospection};
use super::reader::{Base, EnumSpec, Fields, Shape, StructSpec};
use super::services::{
    RawIdpClient, RawLogout, RawLogoutRevoke, RawProviderRevoke, RawResourceServerRevoke,
    RawRevocationFeed,
};
use super::{
    Action, DpopMode, RawConfig, RawJwksSource, RawMatch, RawProvider, RawRule, RawTokenSource,
};
use Base::{Bool, Json, JsonMap, Str, StrMap, U32, U64, Usize};
use Shape::{List, One, Opt, OptList};

/// A field with `#[serde(default)]` and one without.
const D: bool = true;
const R: bool = false;

pub(super) static CONFIG: StructSpec = StructSpec {
    name: "RawConfig",
    names: &[
        "providers",
        "realm",
        "max_token_bytes",
        "claim_headers",
        "claim_header_separator",
        "rules",
        "idp_client",
        "revocation_feed",
        "logout",
        "backchannel_logout",
        "hub",
        "introspection_cache_entries",
        "cache_max_entries",
        "dpop_replay_cache_entries",
    ],
    fields: &[
        (List, Base::Struct(&PROVIDER), R),
        (Opt, Str, D),
        (Opt, Usize, D),
        (Opt, StrMap, D),
        (Opt, Str, D),
        (List, Base::Struct(&RULE), D),
        (Opt, Base::Struct(&IDP_CLIENT), D),
        (Opt, Base::Struct(&REVOCATION_FEED), D),
        (Opt, Base::Struct(&LOGOUT), D),
        (Opt, Base::Struct(&BACKCHANNEL_LOGOUT), D),
        (Opt, Base::Struct(&HUB), D),
        (Opt, Usize, D),
        (Opt, Usize, D),
        (Opt, Usize, D),
    ],
};

pub(super) fn config(mut f: Fields) -> RawConfig {
    RawConfig {
        providers: f.records(provider),
        realm: f.opt_string(),
        max_token_bytes: f.opt_usize(),
        claim_headers: f.opt_str_map(),
        claim_header_separator: f.opt_string(),
        rules: f.records(rule),
        idp_client: f.opt_record(idp_client),
        revocation_feed: f.opt_record(revocation_feed),
        logout: f.opt_record(logout),
        backchannel_logout: f.opt_record(backchannel_logout),
        hub: f.opt_record(hub),
        introspection_cache_entries: f.opt_usize(),
        cache_max_entries: f.opt_usize(),
        dpop_replay_cache_entries: f.opt_usize(),
    }
}

static PROVIDER: StructSpec = StructSpec {
    name: "RawProvider",
    names: &[
        "name",
        "issuer",
        "audiences",
        "algorithms",
        "jwks",
        "discovery",
        "inline_jwks",
        "leeway_seconds",
        "max_token_lifetime_seconds",
        "backchannel_logout_audiences",
        "introspection",
        "token_types",
        "forward_token",
        "token_sources",
        "revoke",
        "dpop",
        "dpop_algorithms",
        "dpop_proof_max_age_seconds",
        "dpop_proof_leeway_seconds",
        "dpop_htu_base",
    ],
    fields: &[
        (Opt, Str, D),
        (One, Str, R),
        (List, Str, R),
        (List, Str, R),
        (Opt, Base::Struct(&JWKS_SOURCE), D),
        (Opt, Base::Struct(&DISCOVERY), D),
        (Opt, Json, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (OptList, Str, D),
        (Opt, Base::Struct(&INTROSPECTION), D),
        (OptList, Str, D),
        (Opt, Bool, D),
        (OptList, Base::Struct(&TOKEN_SOURCE), D),
        (Opt, Base::Struct(&PROVIDER_REVOKE), D),
        (Opt, Base::Enum(&DPOP_MODE), D),
        (OptList, Str, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, Str, D),
    ],
};

fn provider(mut f: Fields) -> RawProvider {
    RawProvider {
        name: f.opt_string(),
        issuer: f.string(),
        audiences: f.strings(),
        algorithms: f.strings(),
        jwks: f.opt_record(jwks_source),
        discovery: f.opt_record(discovery),
        inline_jwks: f.opt_json(),
        leeway_seconds: f.opt_u64(),
        max_token_lifetime_seconds: f.opt_u64(),
        backchannel_logout_audiences: f.opt_strings(),
        introspection: f.opt_record(introspection),
        token_types: f.opt_strings(),
        forward_token: f.opt_bool(),
        token_sources: f.opt_records(token_source),
        revoke: f.opt_record(provider_revoke),
        dpop: f.opt_variant().and_then(dpop_mode),
        dpop_algorithms: f.opt_strings(),
        dpop_proof_max_age_seconds: f.opt_u64(),
        dpop_proof_leeway_seconds: f.opt_u64(),
        dpop_htu_base: f.opt_string(),
    }
}

static DPOP_MODE: EnumSpec = EnumSpec {
    name: "DpopMode",
    variants: &["disabled", "allowed", "required"],
};

fn dpop_mode(i: usize) -> Option<DpopMode> {
    [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required]
        .get(i)
        .copied()
}

static JWKS_SOURCE: StructSpec = StructSpec {
    name: "RawJwksSource",
    names: &[
        "cluster",
        "path",
        "authority",
        "refresh_seconds",
        "min_early_refresh_seconds",
        "timeout_ms",
    ],
    fields: &[
        (One, Str, R),
        (One, Str, R),
        (Opt, Str, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, U64, D),
    ],
};

fn jwks_source(mut f: Fields) -> RawJwksSource {
    RawJwksSource {
        cluster: f.string(),
        path: f.string(),
        authority: f.opt_string(),
        refresh_seconds: f.opt_u64(),
        min_early_refresh_seconds: f.opt_u64(),
        timeout_ms: f.opt_u64(),
    }
}

static DISCOVERY: StructSpec = StructSpec {
    name: "RawDiscovery",
    names: &[
        "cluster",
        "path",
        "authority",
        "timeout_ms",
        "refresh_seconds",
        "min_early_refresh_seconds",
        "origins",
    ],
    fields: &[
        (One, Str, R),
        (Opt, Str, D),
        (Opt, Str, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, StrMap, D),
    ],
};

fn discovery(mut f: Fields) -> RawDiscovery {
    RawDiscovery {
        cluster: f.string(),
        path: f.opt_string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        refresh_seconds: f.opt_u64(),
        min_early_refresh_seconds: f.opt_u64(),
        origins: f.opt_str_map(),
    }
}

static INTROSPECTION: StructSpec = StructSpec {
    name: "RawIntrospection",
    names: &[
        "cluster",
        "path",
        "authority",
        "timeout_ms",
        "client_id",
        "client_secret",
        "introspect",
        "cache_seconds",
        "negative_cache_seconds",
        "jwt_response",
    ],
    fields: &[
        (Opt, Str, D),
        (Opt, Str, D),
        (Opt, Str, D),
        (Opt, U64, D),
        (One, Str, R),
        (One, Str, R),
        (Opt, Base::Enum(&INTROSPECT_MODE), D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, Bool, D),
    ],
};

fn introspection(mut f: Fields) -> RawIntrospection {
    RawIntrospection {
        cluster: f.opt_string(),
        path: f.opt_string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        client_id: f.string(),
        client_secret: f.string(),
        introspect: f.opt_variant().and_then(|i| {
            [IntrospectMode::Opaque, IntrospectMode::Always]
                .get(i)
                .copied()
        }),
        cache_seconds: f.opt_u64(),
        negative_cache_seconds: f.opt_u64(),
        jwt_response: f.opt_bool(),
    }
}

static INTROSPECT_MODE: EnumSpec = EnumSpec {
    name: "IntrospectMode",
    variants: &["opaque", "always"],
};

static TOKEN_SOURCE: StructSpec = StructSpec {
    name: "RawTokenSource",
    names: &["header", "prefix", "query", "cookie"],
    fields: &[(Opt, Str, D), (Opt, Str, D), (Opt, Str, D), (Opt, Str, D)],
};

fn token_source(mut f: Fields) -> RawTokenSource {
    RawTokenSource {
        header: f.opt_string(),
        prefix: f.opt_string(),
        query: f.opt_string(),
        cookie: f.opt_string(),
    }
}

static PROVIDER_REVOKE: StructSpec = StructSpec {
    name: "RawProviderRevoke",
    names: &[
        "cluster",
        "path",
        "authority",
        "timeout_ms",
        "client_id",
        "client_secret",
    ],
    fields: &[
        (Opt, Str, D),
        (Opt, Str, D),
        (Opt, Str, D),
        (Opt, U64, D),
        (One, Str, R),
        (One, Str, R),
    ],
};

fn provider_revoke(mut f: Fields) -> RawProviderRevoke {
    RawProviderRevoke {
        cluster: f.opt_string(),
        path: f.opt_string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        client_id: f.string(),
        client_secret: f.string(),
    }
}

static RULE: StructSpec = StructSpec {
    name: "RawRule",
    names: &["match", "action", "scopes", "claims", "providers"],
    fields: &[
        (One, Base::Struct(&MATCH), R),
        (Opt, Base::Enum(&ACTION), D),
        (List, Str, D),
        (One, JsonMap, D),
        (List, Str, D),
    ],
};

fn rule(mut f: Fields) -> RawRule {
    RawRule {
        matcher: f.record(path_match),
        action: f.opt_variant().and_then(|i| {
            [Action::Require, Action::AllowMissing, Action::Bypass]
                .get(i)
                .copied()
        }),
        scopes: f.strings(),
        claims: f.json_map(),
        providers: f.strings(),
    }
}

static ACTION: EnumSpec = EnumSpec {
    name: "Action",
    variants: &["require", "allow_missing", "bypass"],
};

static MATCH: StructSpec = StructSpec {
    name: "RawMatch",
    names: &["prefix", "exact", "regex", "methods"],
    fields: &[(Opt, Str, D), (Opt, Str, D), (Opt, Str, D), (List, Str, D)],
};

fn path_match(mut f: Fields) -> RawMatch {
    RawMatch {
        prefix: f.opt_string(),
        exact: f.opt_string(),
        regex: f.opt_string(),
        methods: f.strings(),
    }
}

static IDP_CLIENT: StructSpec = StructSpec {
    name: "RawIdpClient",
    names: &["client_id", "client_secret"],
    fields: &[(One, Str, R), (One, Str, R)],
};

fn idp_client(mut f: Fields) -> RawIdpClient {
    RawIdpClient {
        client_id: f.string(),
        client_secret: f.string(),
    }
}

static REVOCATION_FEED: StructSpec = StructSpec {
    name: "RawRevocationFeed",
    names: &[
        "cluster",
        "path",
        "authority",
        "timeout_ms",
        "poll_ms",
        "long_poll_seconds",
        "require_initial_sync",
    ],
    fields: &[
        (One, Str, R),
        (One, Str, R),
        (Opt, Str, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, U64, D),
        (Opt, Bool, D),
    ],
};

fn revocation_feed(mut f: Fields) -> RawRevocationFeed {
    RawRevocationFeed {
        cluster: f.string(),
        path: f.string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        poll_ms: f.opt_u64(),
        long_poll_seconds: f.opt_u64(),
        require_initial_sync: f.opt_bool(),
    }
}

static LOGOUT: StructSpec = StructSpec {
    name: "RawLogout",
    names: &["path", "revoke", "resource_server"],
    fields: &[
        (Opt, Str, D),
        (Opt, Base::Struct(&LOGOUT_REVOKE), D),
        (One, Base::Struct(&RESOURCE_SERVER_REVOKE), R),
    ],
};

fn logout(mut f: Fields) -> RawLogout {
    RawLogout {
        path: f.opt_string(),
        revoke: f.opt_record(logout_revoke),
        resource_server: f.record(resource_server_revoke),
    }
}

static LOGOUT_REVOKE: StructSpec = StructSpec {
    name: "RawLogoutRevoke",
    names: &["cluster", "path", "authority", "timeout_ms", "provider"],
    fields: &[
        (One, Str, R),
        (One, Str, R),
        (Opt, Str, D),
        (Opt, U64, D),
        (Opt, Str, D),
    ],
};

fn logout_revoke(mut f: Fields) -> RawLogoutRevoke {
    RawLogoutRevoke {
        cluster: f.string(),
        path: f.string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        provider: f.opt_string(),
    }
}

static RESOURCE_SERVER_REVOKE: StructSpec = StructSpec {
    name: "RawResourceServerRevoke",
    names: &[
        "cluster",
        "path",
        "authority",
        "timeout_ms",
        "secret_header",
        "secret",
    ],
    fields: &[
        (One, Str, R),
        (One, Str, R),
        (Opt, Str, D),
        (Opt, U64, D),
        (One, Str, R),
        (One, Str, R),
    ],
};

fn resource_server_revoke(mut f: Fields) -> RawResourceServerRevoke {
    RawResourceServerRevoke {
        cluster: f.string(),
        path: f.string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        secret_header: f.string(),
        secret: f.string(),
    }
}

static BACKCHANNEL_LOGOUT: StructSpec = StructSpec {
    name: "RawBackchannelLogout",
    names: &[
        "path",
        "max_body_bytes",
        "max_verifications_per_second",
        "max_token_age_seconds",
    ],
    fields: &[(Opt, Str, D), (Opt, Usize, D), (Opt, U32, D), (Opt, U64, D)],
};

fn backchannel_logout(mut f: Fields) -> RawBackchannelLogout {
    RawBackchannelLogout {
        path: f.opt_string(),
        max_body_bytes: f.opt_usize(),
        max_verifications_per_second: f.opt_u32(),
        max_token_age_seconds: f.opt_u64(),
    }
}

static HUB: StructSpec = StructSpec {
    name: "RawHub",
    names: &[
        "cluster",
        "authority",
        "timeout_ms",
        "cutoffs_path",
        "backchannel_logout_path",
        "issuers",
    ],
    fields: &[
        (One, Str, R),
        (Opt, Str, D),
        (Opt, U64, D),
        (Opt, Str, D),
        (Opt, Str, D),
        (List, Str, R),
    ],
};

fn hub(mut f: Fields) -> RawHub {
    RawHub {
        cluster: f.string(),
        authority: f.opt_string(),
        timeout_ms: f.opt_u64(),
        cutoffs_path: f.opt_string(),
        backchannel_logout_path: f.opt_string(),
        issuers: f.strings(),
    }
}
