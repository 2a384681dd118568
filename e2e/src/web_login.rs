//! Signing in at the IDP the way a browser does, without a browser: the authorization request,
//! the login form (with its CSRF cookie), the redirect with a code, the code exchange; and
//! RP-initiated logout with the same cookies. (The real-browser tests are in e2e/browser.)

use crate::client::{self, Response};
use std::collections::BTreeMap;

/// Cookies the IDP set, by name.
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, res: &Response) {
        for (k, v) in &res.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let Some((pair, attrs)) = v.split_once(';') else {
                continue;
            };
            if let Some((name, value)) = pair.split_once('=') {
                if attrs.contains("Max-Age=0") {
                    self.0.remove(name);
                } else {
                    self.0.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// A GET that does not follow redirects, with the jar's cookies (and keeping the new ones).
pub fn get(jar: &mut Jar, url: &str) -> Result<Response, String> {
    let res = client::collect(
        client::agent_following(0)
            .get(url)
            .header("cookie", jar.header())
            .call(),
    )?;
    jar.take(&res);
    Ok(res)
}

/// A form POST that does not follow redirects, with the jar's cookies.
pub fn post(jar: &mut Jar, url: &str, form: &[(&str, &str)]) -> Result<Response, String> {
    let res = client::collect(
        client::agent_following(0)
            .post(url)
            .header("cookie", jar.header())
            .send_form(form.iter().copied()),
    )?;
    jar.take(&res);
    Ok(res)
}

/// The value of the hidden input `name` of a page (values here are URL-safe, never escaped).
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let rest = &html[html.find(&marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn location(res: &Response) -> Result<String, String> {
    res.header("location")
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a redirect, got {}: {}", res.status, res.body))
}

/// A client of the authorization code grant.
pub struct CodeClient<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
}

/// Signs `user` in through the login form for `client` (a client without a consent page):
/// the authorization code the browser is sent back with, and the browser's cookies.
pub fn authorise(
    idp_url: &str,
    client: &CodeClient<'_>,
    (user, password): (&str, &str),
) -> Result<(String, Jar), String> {
    let mut jar = Jar::default();
    let request = [
        ("response_type", "code"),
        ("client_id", client.id),
        ("redirect_uri", client.redirect_uri),
        ("scope", client.scope),
        ("state", "e2e-state"),
        ("nonce", "e2e-nonce"),
    ];
    let query = serde_urlencoded::to_string(request).map_err(|e| e.to_string())?;
    let page = get(&mut jar, &format!("{idp_url}/oauth2/authorise?{query}"))?;
    if page.status != 200 {
        return Err(format!("login page: {} {}", page.status, page.body));
    }
    if jar.get("idp_csrf").is_none() {
        return Err("the login page set no CSRF cookie".into());
    }
    let csrf =
        hidden_field(&page.body, "login_csrf").ok_or("the login page has no login_csrf field")?;
    let mut form = request.to_vec();
    form.extend([
        ("login_csrf", csrf.as_str()),
        ("username", user),
        ("password", password),
    ]);
    let res = post(&mut jar, &format!("{idp_url}/oauth2/authorise"), &form)?;
    let back = url::Url::parse(&location(&res)?).map_err(|e| e.to_string())?;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no code in {back}"))?;
    Ok((code, jar))
}

/// Redeems `code` at the token endpoint (whatever the answer).
pub fn exchange(idp_url: &str, client: &CodeClient<'_>, code: &str) -> Result<Response, String> {
    client::post_form(
        &format!("{idp_url}/oauth2/token"),
        &[],
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri),
            ("client_id", client.id),
            ("client_secret", client.secret),
        ],
    )
}

/// [`authorise`] then [`exchange`]: the token response and the browser's cookies.
pub fn sign_in(
    idp_url: &str,
    client: &CodeClient<'_>,
    user: (&str, &str),
) -> Result<(serde_json::Value, Jar), String> {
    let (code, jar) = authorise(idp_url, client, user)?;
    let res = exchange(idp_url, client, &code)?;
    if res.status != 200 {
        return Err(format!("code exchange: {} {}", res.status, res.body));
    }
    Ok((res.json()?, jar))
}

/// RP-initiated logout at the IDP with the browser's cookies and an ID token as hint.
pub fn sign_out(idp_url: &str, jar: &mut Jar, id_token: &str) -> Result<Response, String> {
    let query =
        serde_urlencoded::to_string([("id_token_hint", id_token)]).map_err(|e| e.to_string())?;
    get(jar, &format!("{idp_url}/oauth2/logout?{query}"))
}
