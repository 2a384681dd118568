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

/// A raw struct's layout and builder from one list: per field, in declaration order, its JSON
/// name (the field's, or the one after `as`), its `(shape, type, has a default)` and how its
/// value is taken from the fields read (`f` names them).
macro_rules! raw_struct {
    (
        $vis:vis static $spec:ident, $fvis:vis fn $builder:ident($f:ident) -> $raw:ident {
            $($field:ident $(as $json:literal)?: $layout:expr => $read:expr,)*
        }
    ) => {
        $vis static $spec: StructSpec = StructSpec {
            name: stringify!($raw),
            names: &[$(json_name!($field $(, $json)?)),*],
            fields: &[$($layout),*],
        };

        $fvis fn $builder(mut $f: Fields) -> $raw {
            $raw { $($field: $read),* }
        }
    };
}

/// A field's JSON name: its own, unless renamed.
macro_rules! json_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $json:literal) => {
        $json
    };
}

/// A field with `#[serde(default)]` and one without.
const D: bool = true;
const R: bool = false;

raw_struct! {
    pub(super) static CONFIG, pub(super) fn config(f) -> RawConfig {
        providers: (List, Base::Struct(&PROVIDER), R) => f.records(provider),
        realm: (Opt, Str, D) => f.opt_string(),
        max_token_bytes: (Opt, Usize, D) => f.opt_usize(),
        claim_headers: (Opt, StrMap, D) => f.opt_str_map(),
        claim_header_separator: (Opt, Str, D) => f.opt_string(),
        rules: (List, Base::Struct(&RULE), D) => f.records(rule),
        idp_client: (Opt, Base::Struct(&IDP_CLIENT), D) => f.opt_record(idp_client),
        revocation_feed: (Opt, Base::Struct(&REVOCATION_FEED), D) =>
            f.opt_record(revocation_feed),
        logout: (Opt, Base::Struct(&LOGOUT), D) => f.opt_record(logout),
        backchannel_logout: (Opt, Base::Struct(&BACKCHANNEL_LOGOUT), D) =>
            f.opt_record(backchannel_logout),
        hub: (Opt, Base::Struct(&HUB), D) => f.opt_record(hub),
        introspection_cache_entries: (Opt, Usize, D) => f.opt_usize(),
        cache_max_entries: (Opt, Usize, D) => f.opt_usize(),
        dpop_replay_cache_entries: (Opt, Usize, D) => f.opt_usize(),
    }
}

raw_struct! {
    static PROVIDER, fn provider(f) -> RawProvider {
        name: (Opt, Str, D) => f.opt_string(),
        issuer: (One, Str, R) => f.string(),
        audiences: (List, Str, R) => f.strings(),
        algorithms: (List, Str, R) => f.strings(),
        jwks: (Opt, Base::Struct(&JWKS_SOURCE), D) => f.opt_record(jwks_source),
        discovery: (Opt, Base::Struct(&DISCOVERY), D) => f.opt_record(discovery),
        inline_jwks: (Opt, Json, D) => f.opt_json(),
        leeway_seconds: (Opt, U64, D) => f.opt_u64(),
        max_token_lifetime_seconds: (Opt, U64, D) => f.opt_u64(),
        backchannel_logout_audiences: (OptList, Str, D) => f.opt_strings(),
        introspection: (Opt, Base::Struct(&INTROSPECTION), D) => f.opt_record(introspection),
        token_types: (OptList, Str, D) => f.opt_strings(),
        forward_token: (Opt, Bool, D) => f.opt_bool(),
        token_sources: (OptList, Base::Struct(&TOKEN_SOURCE), D) => f.opt_records(token_source),
        revoke: (Opt, Base::Struct(&PROVIDER_REVOKE), D) => f.opt_record(provider_revoke),
        dpop: (Opt, Base::Enum(&DPOP_MODE), D) => f.opt_variant().and_then(dpop_mode),
        dpop_algorithms: (OptList, Str, D) => f.opt_strings(),
        dpop_proof_max_age_seconds: (Opt, U64, D) => f.opt_u64(),
        dpop_proof_leeway_seconds: (Opt, U64, D) => f.opt_u64(),
        dpop_htu_base: (Opt, Str, D) => f.opt_string(),
    }
}

static DPOP_MODE: EnumSpec = EnumSpec {
    name: "DpopMode",
    variants: &["disabled", "allowed", "required"],
};

fn introspect_mode(i: usize) -> Option<IntrospectMode> {
    [IntrospectMode::Opaque, IntrospectMode::Always]
        .get(i)
        .copied()
}

fn action(i: usize) -> Option<Action> {
    [Action::Require, Action::AllowMissing, Action::Bypass]
        .get(i)
        .copied()
}

fn dpop_mode(i: usize) -> Option<DpopMode> {
    [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required]
        .get(i)
        .copied()
}

raw_struct! {
    static JWKS_SOURCE, fn jwks_source(f) -> RawJwksSource {
        cluster: (One, Str, R) => f.string(),
        path: (One, Str, R) => f.string(),
        authority: (Opt, Str, D) => f.opt_string(),
        refresh_seconds: (Opt, U64, D) => f.opt_u64(),
        min_early_refresh_seconds: (Opt, U64, D) => f.opt_u64(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
    }
}

raw_struct! {
    static DISCOVERY, fn discovery(f) -> RawDiscovery {
        cluster: (One, Str, R) => f.string(),
        path: (Opt, Str, D) => f.opt_string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        refresh_seconds: (Opt, U64, D) => f.opt_u64(),
        min_early_refresh_seconds: (Opt, U64, D) => f.opt_u64(),
        origins: (Opt, StrMap, D) => f.opt_str_map(),
    }
}

raw_struct! {
    static INTROSPECTION, fn introspection(f) -> RawIntrospection {
        cluster: (Opt, Str, D) => f.opt_string(),
        path: (Opt, Str, D) => f.opt_string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        client_id: (One, Str, R) => f.string(),
        client_secret: (One, Str, R) => f.string(),
        introspect: (Opt, Base::Enum(&INTROSPECT_MODE), D) =>
            f.opt_variant().and_then(introspect_mode),
        cache_seconds: (Opt, U64, D) => f.opt_u64(),
        negative_cache_seconds: (Opt, U64, D) => f.opt_u64(),
        jwt_response: (Opt, Bool, D) => f.opt_bool(),
    }
}

static INTROSPECT_MODE: EnumSpec = EnumSpec {
    name: "IntrospectMode",
    variants: &["opaque", "always"],
};

raw_struct! {
    static TOKEN_SOURCE, fn token_source(f) -> RawTokenSource {
        header: (Opt, Str, D) => f.opt_string(),
        prefix: (Opt, Str, D) => f.opt_string(),
        query: (Opt, Str, D) => f.opt_string(),
        cookie: (Opt, Str, D) => f.opt_string(),
    }
}

raw_struct! {
    static PROVIDER_REVOKE, fn provider_revoke(f) -> RawProviderRevoke {
        cluster: (Opt, Str, D) => f.opt_string(),
        path: (Opt, Str, D) => f.opt_string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        client_id: (One, Str, R) => f.string(),
        client_secret: (One, Str, R) => f.string(),
    }
}

raw_struct! {
    static RULE, fn rule(f) -> RawRule {
        matcher as "match": (One, Base::Struct(&MATCH), R) => f.record(path_match),
        action: (Opt, Base::Enum(&ACTION), D) => f.opt_variant().and_then(action),
        scopes: (List, Str, D) => f.strings(),
        claims: (One, JsonMap, D) => f.json_map(),
        providers: (List, Str, D) => f.strings(),
    }
}

static ACTION: EnumSpec = EnumSpec {
    name: "Action",
    variants: &["require", "allow_missing", "bypass"],
};

raw_struct! {
    static MATCH, fn path_match(f) -> RawMatch {
        prefix: (Opt, Str, D) => f.opt_string(),
        exact: (Opt, Str, D) => f.opt_string(),
        regex: (Opt, Str, D) => f.opt_string(),
        methods: (List, Str, D) => f.strings(),
    }
}

raw_struct! {
    static IDP_CLIENT, fn idp_client(f) -> RawIdpClient {
        client_id: (One, Str, R) => f.string(),
        client_secret: (One, Str, R) => f.string(),
    }
}

raw_struct! {
    static REVOCATION_FEED, fn revocation_feed(f) -> RawRevocationFeed {
        cluster: (One, Str, R) => f.string(),
        path: (One, Str, R) => f.string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        poll_ms: (Opt, U64, D) => f.opt_u64(),
        long_poll_seconds: (Opt, U64, D) => f.opt_u64(),
        require_initial_sync: (Opt, Bool, D) => f.opt_bool(),
    }
}

raw_struct! {
    static LOGOUT, fn logout(f) -> RawLogout {
        path: (Opt, Str, D) => f.opt_string(),
        revoke: (Opt, Base::Struct(&LOGOUT_REVOKE), D) => f.opt_record(logout_revoke),
        resource_server: (One, Base::Struct(&RESOURCE_SERVER_REVOKE), R) =>
            f.record(resource_server_revoke),
    }
}

raw_struct! {
    static LOGOUT_REVOKE, fn logout_revoke(f) -> RawLogoutRevoke {
        cluster: (One, Str, R) => f.string(),
        path: (One, Str, R) => f.string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        provider: (Opt, Str, D) => f.opt_string(),
    }
}

raw_struct! {
    static RESOURCE_SERVER_REVOKE, fn resource_server_revoke(f) -> RawResourceServerRevoke {
        cluster: (One, Str, R) => f.string(),
        path: (One, Str, R) => f.string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        secret_header: (One, Str, R) => f.string(),
        secret: (One, Str, R) => f.string(),
    }
}

raw_struct! {
    static BACKCHANNEL_LOGOUT, fn backchannel_logout(f) -> RawBackchannelLogout {
        path: (Opt, Str, D) => f.opt_string(),
        max_body_bytes: (Opt, Usize, D) => f.opt_usize(),
        max_verifications_per_second: (Opt, U32, D) => f.opt_u32(),
        max_token_age_seconds: (Opt, U64, D) => f.opt_u64(),
    }
}

raw_struct! {
    static HUB, fn hub(f) -> RawHub {
        cluster: (One, Str, R) => f.string(),
        authority: (Opt, Str, D) => f.opt_string(),
        timeout_ms: (Opt, U64, D) => f.opt_u64(),
        cutoffs_path: (Opt, Str, D) => f.opt_string(),
        backchannel_logout_path: (Opt, Str, D) => f.opt_string(),
        issuers: (List, Str, R) => f.strings(),
    }
}
