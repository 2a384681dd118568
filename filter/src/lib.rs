//! OAuth2 gateway filter. Pure core (no proxy-wasm types) plus thin proxy-wasm glue.
