//! What one revocation costs a gateway to consume, per event: as an entry of today's cursor feed
//! versus as an RFC 8417 Security Event Token carrying a CAEP `session-revoked` (issue 27,
//! part 4; docs/shared-signals.md, "Between the hub and the gateways").
//!
//! ```text
//! cargo run --release -p idp --example set_cost            # 4 rounds of 1 s per variant
//! cargo run --release -p idp --example set_cost -- --rounds 6 --seconds 2
//! ```
//!
//! Variants, interleaved in every round (A B C D E, A B C D E, …):
//! - `feed 1/page`: a feed page holding one hub cut-off entry (`{"iss", "sid", "cutoff",
//!   "exp"}`), parsed by the gateway core's own `FeedPage::parse` (what both modules run on each
//!   long-poll answer);
//! - `feed 100/page`: a page of 100 such entries, the cost divided by 100;
//! - `SET ES256 1/poll`, `SET RS256 1/poll`: an RFC 8936 poll answer (`{"sets": {jti: SET},
//!   "moreAvailable": false}`) holding one SET made by our transmitter's code
//!   (`idp::ssf::set`), parsed, then the SET checked by the hub receiver's code
//!   (`idp::federation::ssf::set::validate`: header, signature with `jsonwebtoken` on aws-lc-rs,
//!   `iss`, `aud`, `iat` window, no `sub`/`exp`, `sub_id`), turned into its cut-off
//!   (`idp::federation::ssf::events::plan`) and its `jti` checked against (and added to) the set
//!   of `jti`s seen;
//! - `signature ES256`, `signature RS256`: the signature check alone of the same SETs
//!   (`jsonwebtoken::crypto::verify`), to tell the signature from the rest;
//! - `SET ES256 100/poll`: 100 SETs in one poll answer, the cost divided by 100.
//!
//! Each variant runs for `--seconds` per round; the figures are nanoseconds per event of wall
//! time and of the thread's time on a CPU (`/proc/thread-self/schedstat`, first field), and
//! the share of the wall time the thread waited for a CPU (second field: high means the machine
//! was busy and the round is not to be trusted). The load average is printed before and after.
//! This runs natively (the native module's case); inside the Wasm module the signature costs
//! several times more (docs/shared-signals.md).

use clap::Parser;
use idp::federation::ssf::events::{Effect, plan};
use idp::federation::ssf::set::{SetKeys, SetPolicy, validate};
use idp::oauth::keys::KeyRing;
use idp::settings::{Overrides, RawSettings, SigningAlg, SsfStream};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "ssf-receiver";
/// Distinct SETs per variant: a `jti` comes round again only after the seen-set is cleared.
const POOL: usize = 200;

#[derive(Parser)]
#[command(about = "Per-event cost of a revocation as a feed entry and as a SET")]
struct Args {
    /// Rounds; every round runs each variant once, in the same order.
    #[arg(long, default_value_t = 4)]
    rounds: u32,
    /// Seconds each variant runs per round.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rounds < 1 || !(0.05..=60.0).contains(&args.seconds) {
        return Err("--rounds at least 1, --seconds from 0.05 to 60".into());
    }
    println!("load average before: {}", loadavg());
    let now = unix_now()?;
    let stream = hub_stream()?;
    let (es, es_jwks) = Variant::set(SigningAlg::Es256, 1, now, &stream)?;
    let (rs, rs_jwks) = Variant::set(SigningAlg::Rs256, 1, now, &stream)?;
    let es_signature = Variant::signature_of(&es, SigningAlg::Es256, &es_jwks)?;
    let rs_signature = Variant::signature_of(&rs, SigningAlg::Rs256, &rs_jwks)?;
    let mut variants = vec![
        Variant::feed(1, now),
        Variant::feed(100, now),
        es,
        es_signature,
        rs,
        rs_signature,
        Variant::set(SigningAlg::Es256, 100, now, &stream)?.0,
    ];
    for v in &mut variants {
        // every input is consumed once before timing: a broken variant fails here, not silently
        v.consume(0)?;
    }
    println!("\nbytes on the wire per event (response body; no HTTP framing):");
    for v in &variants {
        println!(
            "  {:<20} {:>5} B   ({})",
            v.name,
            v.bytes_per_event(),
            v.shape
        );
    }
    let budget = Duration::from_secs_f64(args.seconds);
    let mut results: Vec<Vec<Figures>> = vec![Vec::new(); variants.len()];
    for round in 1..=args.rounds {
        println!("\nround {round}/{}", args.rounds);
        for (v, out) in variants.iter_mut().zip(results.iter_mut()) {
            let f = v.run(budget)?;
            println!(
                "  {:<20} wall {:>9.0} ns/event  cpu {:>9.0} ns/event  waited for a CPU {:>4.1} %  ({} events)",
                v.name,
                f.wall_ns,
                f.cpu_ns,
                f.waiting * 100.0,
                f.events
            );
            out.push(f);
        }
    }
    println!(
        "\nmedian of {} rounds (cpu ns per event; × the feed entry on a 1-entry page):",
        args.rounds
    );
    let base = median(results[0].iter().map(|f| f.cpu_ns).collect());
    for (v, r) in variants.iter().zip(&results) {
        let cpu = median(r.iter().map(|f| f.cpu_ns).collect());
        let wall = median(r.iter().map(|f| f.wall_ns).collect());
        println!(
            "  {:<20} cpu {:>9.0} ns  wall {:>9.0} ns  ×{:>7.1}  {:>5} B",
            v.name,
            cpu,
            wall,
            cpu / base,
            v.bytes_per_event()
        );
    }
    println!("\nload average after: {}", loadavg());
    Ok(())
}

#[derive(Clone, Copy)]
struct Figures {
    wall_ns: f64,
    cpu_ns: f64,
    /// Share of the wall time spent waiting for a CPU.
    waiting: f64,
    events: u64,
}

/// One way a gateway could receive the same revocation.
struct Variant {
    name: String,
    shape: &'static str,
    events_per_body: usize,
    bodies: Vec<Vec<u8>>,
    kind: Kind,
}

enum Kind {
    Feed,
    Set(Box<SetReceiver>),
    /// Only the signature of each SET, by `jsonwebtoken::crypto::verify`: the share of the SET
    /// variant that is the signature.
    Signature(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm),
}

struct SetReceiver {
    keys: SetKeys,
    stream: SsfStream,
    now: i64,
    seen: HashSet<String>,
}

impl Variant {
    fn feed(per_page: usize, now: i64) -> Variant {
        let bodies = (0..POOL)
            .map(|_| {
                let revoked: Vec<Value> = (0..per_page)
                    .map(|_| {
                        json!({"iss": ISSUER, "sid": idp::oauth::tokens::random_id(),
                               "cutoff": now, "exp": now + 3600})
                    })
                    .collect();
                json!({"cursor": "1234567", "revoked": revoked, "more": false})
                    .to_string()
                    .into_bytes()
            })
            .collect();
        Variant {
            name: format!("feed {per_page}/page"),
            shape: "{\"iss\",\"sid\",\"cutoff\",\"exp\"} in {\"cursor\",\"revoked\",\"more\"}",
            events_per_body: per_page,
            bodies,
            kind: Kind::Feed,
        }
    }

    /// The variant and the transmitter's JWKS.
    fn set(
        alg: SigningAlg,
        per_poll: usize,
        now: i64,
        stream: &SsfStream,
    ) -> Result<(Variant, Value)> {
        let (ring, jwks) = transmitter_keys(alg)?;
        let (keys, skipped) =
            SetKeys::parse(jwks.to_string().as_bytes()).ok_or("the JWKS does not parse")?;
        if keys.is_empty() || !skipped.is_empty() {
            return Err(format!("the receiver refused the transmitter's key: {skipped:?}").into());
        }
        let mut bodies = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            let mut sets = serde_json::Map::new();
            for _ in 0..per_poll {
                let claims = idp::ssf::set::session_revoked(
                    ISSUER,
                    AUDIENCE,
                    now,
                    &idp::oauth::tokens::random_id(),
                    &idp::oauth::tokens::random_id(),
                    now,
                );
                let (jti, token) = idp::ssf::set::sign(&ring, &claims)?;
                sets.insert(jti, Value::String(token));
            }
            bodies.push(
                json!({"sets": sets, "moreAvailable": false})
                    .to_string()
                    .into_bytes(),
            );
        }
        let variant = Variant {
            name: format!("SET {} {per_poll}/poll", alg.as_str()),
            shape: "{\"sets\": {jti: compact JWS}, \"moreAvailable\"} (RFC 8936)",
            events_per_body: per_poll,
            bodies,
            kind: Kind::Set(Box::new(SetReceiver {
                keys,
                stream: stream.clone(),
                now,
                seen: HashSet::new(),
            })),
        };
        Ok((variant, jwks))
    }

    /// The signature check alone of the SETs of `set` (a 1-SET-per-poll variant).
    fn signature_of(set: &Variant, alg: SigningAlg, jwks: &Value) -> Result<Variant> {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone())?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)?;
        let mut bodies = Vec::with_capacity(set.bodies.len());
        for body in &set.bodies {
            let answer: PollAnswer = serde_json::from_slice(body)?;
            for token in answer.sets.into_values() {
                bodies.push(token.into_bytes());
            }
        }
        Ok(Variant {
            name: format!("  signature {}", alg.as_str()),
            shape: "the compact JWS alone",
            events_per_body: 1,
            bodies,
            kind: Kind::Signature(key, alg.jwt()),
        })
    }

    fn bytes_per_event(&self) -> usize {
        let total: usize = self.bodies.iter().map(Vec::len).sum();
        total / (self.bodies.len() * self.events_per_body)
    }

    /// Consumes body `i`: every event in it applied (or an error: the benchmark is wrong).
    fn consume(&mut self, i: usize) -> Result<usize> {
        let body = &self.bodies[i % self.bodies.len()];
        match &mut self.kind {
            Kind::Feed => {
                let page = filter::shared_state::feed_page::FeedPage::parse(body)?;
                if page.revocations.len() != self.events_per_body {
                    return Err("a feed page lost entries".into());
                }
                Ok(black_box(page).revocations.len())
            }
            Kind::Signature(key, alg) => {
                let token = std::str::from_utf8(body)?;
                let (message, signature) = token.rsplit_once('.').ok_or("not a compact JWS")?;
                if !jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, *alg)? {
                    return Err("a signature does not verify".into());
                }
                Ok(1)
            }
            Kind::Set(r) => {
                if i.is_multiple_of(self.bodies.len()) {
                    r.seen.clear();
                }
                let answer: PollAnswer = serde_json::from_slice(body)?;
                let policy = SetPolicy {
                    transmitter: &r.stream.transmitter,
                    audience: &r.stream.audience,
                    leeway_seconds: r.stream.leeway_seconds,
                    max_age_seconds: r.stream.set_max_age_seconds,
                };
                let mut applied = 0;
                for (jti, token) in &answer.sets {
                    let valid = validate(token, &r.keys, &policy, r.now)
                        .map_err(|e| format!("SET refused: {}", e.name()))?;
                    if valid.jti != *jti || !r.seen.insert(valid.jti.clone()) {
                        return Err("a SET filed under another jti, or seen twice".into());
                    }
                    let effects =
                        plan(&r.stream, &valid, r.now).map_err(|e| e.name().to_owned())?;
                    if !matches!(effects.as_slice(), [Effect::Cutoff { .. }]) {
                        return Err(format!("not one cut-off: {effects:?}").into());
                    }
                    applied += black_box(effects).len();
                }
                if applied != self.events_per_body {
                    return Err("a poll answer lost SETs".into());
                }
                Ok(applied)
            }
        }
    }

    fn run(&mut self, budget: Duration) -> Result<Figures> {
        let cpu_before = schedstat()?;
        let start = Instant::now();
        let mut events = 0u64;
        let mut i = 0usize;
        while start.elapsed() < budget {
            // a batch between clock reads, so reading the clock stays out of the figure
            for _ in 0..8 {
                events += self.consume(i)? as u64;
                i += 1;
            }
        }
        let wall = start.elapsed().as_nanos() as f64;
        let cpu_after = schedstat()?;
        let n = events as f64;
        Ok(Figures {
            wall_ns: wall / n,
            cpu_ns: (cpu_after.0 - cpu_before.0) as f64 / n,
            waiting: (cpu_after.1 - cpu_before.1) as f64 / wall,
            events,
        })
    }
}

#[derive(Deserialize)]
struct PollAnswer {
    sets: BTreeMap<String, String>,
    #[serde(rename = "moreAvailable", default)]
    _more_available: bool,
}

/// The hub's stream settings for our transmitter, as docs/shared-signals.md configures it.
fn hub_stream() -> Result<SsfStream> {
    let toml = format!(
        r#"
issuer = "https://hub.example.com"
[[federation.issuers]]
issuer = "{ISSUER}"
jwks_uri = "{ISSUER}/.well-known/jwks.json"
max_token_lifetime_seconds = 300
[[federation.ssf_streams]]
name = "ours"
transmitter = "{ISSUER}"
audience = "{AUDIENCE}"
issuers = ["{ISSUER}"]
delivery = "poll"
auth = {{ bearer = "bench-only-bearer" }}
"#
    );
    let settings = RawSettings::from_toml(&toml)?.validate(&Overrides::default())?;
    settings
        .federation
        .ssf_streams
        .into_iter()
        .next()
        .ok_or_else(|| "no stream in the settings".into())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A transmitter key ring that signs with `alg` (P-256 or RSA 2048, as our IDP makes them)
/// and its JWKS.
fn transmitter_keys(alg: SigningAlg) -> Result<(KeyRing, Value)> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let kid = format!("bench-{}", alg.as_str());
    let (encoding, mut jwk) = match alg {
        SigningAlg::Es256 => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
            let point = key.public_key().as_ref();
            let (x, y) = match point {
                [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err("not an uncompressed P-256 point".into()),
            };
            let der = key.to_pkcs8v1()?;
            (
                jsonwebtoken::EncodingKey::from_ec_der(der.as_ref()),
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}),
            )
        }
        SigningAlg::Rs256 => {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)?;
            let public = key.public_key();
            let jwk = json!({"kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero())});
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)?;
            let info = pkcs8::PrivateKeyInfo::try_from(der.as_ref())
                .map_err(|e| format!("RSA key: {e}"))?;
            (
                jsonwebtoken::EncodingKey::from_rsa_der(info.private_key),
                jwk,
            )
        }
        SigningAlg::EdDsa => return Err("SSF profiles RS256 and ES256 only".into()),
    };
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    jwk["kid"] = kid.clone().into();
    let jwks = json!({"keys": [jwk]});
    let ring = KeyRing {
        active_kid: kid,
        active_alg: alg,
        encoding,
        rs256: None,
        verifying: Vec::new(),
        jwks: jwks.clone(),
    };
    Ok((ring, jwks))
}

/// `(ns on a CPU, ns waiting for one)` of this thread so far.
fn schedstat() -> Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(run)), Some(Ok(wait))) => Ok((run, wait)),
        _ => Err(format!("/proc/thread-self/schedstat unreadable: {text:?}").into()),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn unix_now() -> Result<i64> {
    Ok(i64::try_from(
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    )?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
