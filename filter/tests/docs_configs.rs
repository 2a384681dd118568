//! The docs cannot drift from the code: every fenced block of README.md and docs/*.md is checked,
//! by the HTML comment on the line before it (its marker):
//!
//! - ```` ```json ```` or ```` ```jsonc ```` after `<!-- filter-config -->`, or naming
//!   `providers` (shaped like one): loaded by the configuration reader both modules use
//!   ([`FilterConfig::from_json`]); any other JSON (a feed page, editor settings; `<!-- json:
//!   WHAT -->` says what it is) must at least be valid JSON (`//` comments allowed in jsonc);
//! - ```` ```toml ```` after `<!-- idp-settings -->`: loaded by the IDP's settings reader in
//!   `idp/tests/docs_settings.rs`;
//! - any block after `<!-- excerpt-of: PATH -->`: its lines are consecutive lines of that file
//!   (an Envoy or IDP file the tests load), so a copy cannot differ from what ships; an unmarked
//!   YAML (TOML) block must be consecutive lines of some file under `envoy/` (`idp/`), its `#`
//!   comment lines aside;
//! - any block after `<!-- printed-by: scripts/up -->`: its lines are consecutive lines of what
//!   `scripts/up` prints with the default ports;
//! - ```` ```sh ```` blocks: each command is a script of `scripts/`, `cargo test`/`run`/`bench` of
//!   a target that exists, or the `idp` command with flags it has.
//!
//! So a configuration in the docs is either checked or not there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use filter::config::FilterConfig;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fenced block: its language, its text, the marker before it and where it starts.
#[derive(Debug, PartialEq)]
struct Block {
    lang: String,
    text: String,
    marker: Option<String>,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    let mut previous = "";
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match &mut current {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    let marker = previous
                        .strip_prefix("<!--")
                        .and_then(|m| m.strip_suffix("-->"))
                        .map(|m| m.trim().to_owned());
                    current = Some(Block {
                        lang: lang.trim().to_owned(),
                        text: String::new(),
                        marker,
                        line: n + 1,
                    });
                }
            }
            Some(_) if trimmed == "```" => out.extend(current.take()),
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
        }
        if !trimmed.is_empty() {
            previous = trimmed;
        }
    }
    assert!(current.is_none(), "a fenced block is not closed");
    out
}

/// README.md and every docs/*.md, with their text.
fn documents() -> Vec<(String, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The crates' own READMEs that point into docs/ (their links are checked too).
fn readmes() -> Vec<(String, String)> {
    ["idp/README.md"]
        .iter()
        .map(|p| {
            (
                (*p).to_owned(),
                std::fs::read_to_string(root().join(p)).unwrap(),
            )
        })
        .collect()
}

/// The non-empty lines of `text`, trimmed.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether `part`'s lines are consecutive lines of `whole` (both trimmed, blank lines ignored).
fn is_excerpt(part: &str, whole: &str) -> bool {
    let (part, whole) = (lines(part), lines(whole));
    !part.is_empty() && whole.windows(part.len()).any(|w| w == part.as_slice())
}

/// `text` without `//` comments outside strings (JSONC, as editors' settings files are written).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut end = line.len();
        for (i, c) in line.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '/' if !in_string && line[i..].starts_with("//") => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
}

/// Whether `block` (its `#` comment lines aside) is consecutive lines of some `.ext` file under
/// one of `dirs`: a copy of a file that ships, wherever it was taken from.
fn excerpt_of_any(block: &str, dirs: &[&str], ext: &str) -> bool {
    let code: String = block
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut pending: Vec<PathBuf> = dirs.iter().map(|d| root().join(d)).collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == ext)
                && std::fs::read_to_string(&path).is_ok_and(|f| is_excerpt(&code, &f))
            {
                return true;
            }
        }
    }
    false
}

/// What `scripts/up` prints once the stack is up, with the default ports: its `USAGE` here-doc
/// expanded as bash expands it.
fn printed_by_scripts_up() -> String {
    let script = std::fs::read_to_string(root().join("scripts/up")).unwrap();
    let start = script
        .find("cat <<USAGE\n")
        .expect("scripts/up prints a USAGE here-doc")
        + 12;
    let end = start + script[start..].find("\nUSAGE\n").unwrap();
    let vars = [
        ("G", "http://127.0.0.1:10000"),
        ("IDP_PORT", "9000"),
        ("ADMIN_PORT", "9901"),
    ];
    let mut out = String::new();
    let mut chars = script[start..end].chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some(next @ ('\\' | '$'))) => {
                out.push(next);
                chars.next();
            }
            ('$', Some(next)) if next.is_ascii_alphabetic() || next == '_' => {
                let mut name = String::new();
                while let Some(&n) = chars
                    .peek()
                    .filter(|n| n.is_ascii_alphanumeric() || **n == '_')
                {
                    name.push(n);
                    chars.next();
                }
                let value = vars.iter().find(|(v, _)| *v == name);
                out.push_str(
                    value
                        .unwrap_or_else(|| panic!("scripts/up prints ${name}"))
                        .1,
                );
            }
            _ => out.push(c),
        }
    }
    out
}

/// Why the shell command `command` (comments, continuations and assignments already removed) is
/// not one the project runs, if it is not.
fn unknown_command(command: &str) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let exists = |p: &str| root().join(p).exists();
    let &first = words.first()?;
    let crate_dir = |name: &str| {
        [name.to_owned(), format!("tools/{name}")]
            .into_iter()
            .find(|d| exists(&format!("{d}/Cargo.toml")))
    };
    let after = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1).copied())
    };
    match first {
        "export" | "printf" => None,
        script if script.starts_with("scripts/") => {
            (!exists(script)).then(|| format!("{script} does not exist"))
        }
        "python3" => {
            let file = words.get(1).copied().unwrap_or("");
            (!exists(file)).then(|| format!("{file} does not exist"))
        }
        "cargo" => {
            let package = after("-p").unwrap_or("");
            let Some(dir) = crate_dir(package) else {
                return Some(format!("no crate {package}"));
            };
            for (flag, folder) in [
                ("--test", "tests"),
                ("--example", "examples"),
                ("--bench", "benches"),
            ] {
                if let Some(name) = after(flag) {
                    let file = format!("{dir}/{folder}/{name}");
                    if !exists(&format!("{file}.rs")) && !exists(&format!("{file}/main.rs")) {
                        return Some(format!("{file} does not exist"));
                    }
                }
            }
            // `cargo test -p e2e --test e2e -- area::`: each area is a module of the e2e binary.
            if after("--test") == Some("e2e") {
                for area in words.iter().filter_map(|w| w.strip_suffix("::")) {
                    let module = format!("{dir}/tests/e2e/{area}");
                    if !exists(&format!("{module}.rs")) && !exists(&module) {
                        return Some(format!("no e2e module {area}"));
                    }
                }
            }
            None
        }
        "idp" | "target/debug/idp" => {
            let cli = ["mod.rs", "admin.rs"]
                .iter()
                .filter_map(|f| std::fs::read_to_string(root().join("idp/src/cli").join(f)).ok())
                .collect::<String>();
            words
                .iter()
                .filter_map(|w| w.trim_start_matches('[').strip_prefix("--"))
                .map(|flag| flag.split(['=', ']']).next().unwrap_or(flag))
                .find(|flag| {
                    let field = flag.replace('-', "_");
                    !cli.contains(&format!("{field}:"))
                        && !cli.contains(&format!("long = \"{flag}\""))
                })
                .map(|flag| format!("the idp command has no --{flag}"))
        }
        other => Some(format!("{other} is not a command the scripts or tests run")),
    }
}

/// `line` split into words as a shell would (quotes kept, spaces inside them too).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (None, c) if c.is_whitespace() => {
                words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)))
            }
            (_, c) => word.push(c),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}

/// The commands of a shell block: continuations joined, comments and leading `VAR=value`
/// assignments and `nice` removed, pipelines split.
fn commands(block: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        match line.trim_end().strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                joined.push(std::mem::take(&mut pending));
            }
        }
    }
    joined
        .iter()
        .flat_map(|l| l.split(" | "))
        .map(|command| {
            shell_words(command)
                .into_iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-') || w == "nice")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty() && !c.starts_with(')'))
        .collect()
}

/// Every problem with one block of `doc`, as messages.
fn check(doc: &str, block: &Block, scripts_up: &str) -> Vec<String> {
    let at = format!("{doc}:{} (```{})", block.line, block.lang);
    let mut problems = Vec::new();
    let marker = block.marker.as_deref().unwrap_or("");
    if let Some(path) = marker.strip_prefix("excerpt-of:").map(str::trim) {
        match std::fs::read_to_string(root().join(path)) {
            Ok(file) if is_excerpt(&block.text, &file) => {}
            Ok(_) => problems.push(format!("{at}: not consecutive lines of {path}")),
            Err(e) => problems.push(format!("{at}: {path}: {e}")),
        }
        return problems;
    }
    if marker == "printed-by: scripts/up" {
        if !is_excerpt(&block.text, scripts_up) {
            problems.push(format!("{at}: not what scripts/up prints:\n{scripts_up}"));
        }
        return problems;
    }
    match (block.lang.as_str(), marker) {
        ("json" | "jsonc", _) => {
            let json = without_comments(&block.text);
            match serde_json::from_str::<serde_json::Value>(&json) {
                Err(e) => problems.push(format!("{at}: not JSON: {e}")),
                // Marked, or shaped like one (it names providers): a filter configuration.
                Ok(value) if marker == "filter-config" || value.get("providers").is_some() => {
                    if let Err(e) = FilterConfig::from_json(json.as_bytes()) {
                        problems.push(format!("{at}: refused by the filter: {e}"));
                    }
                }
                Ok(_) => {}
            }
        }
        ("toml", "idp-settings") => {} // idp/tests/docs_settings.rs loads these
        ("toml", _) if excerpt_of_any(&block.text, &["idp"], "toml") => {}
        ("yaml" | "yml", _) if excerpt_of_any(&block.text, &["envoy"], "yaml") => {}
        ("toml" | "yaml" | "yml", m) => problems.push(format!(
            "{at}: neither marked ({m:?}: idp-settings, excerpt-of: PATH) nor consecutive lines of a shipped file"
        )),
        ("sh", _) => {
            for command in commands(&block.text) {
                if let Some(why) = unknown_command(&command) {
                    problems.push(format!("{at}: `{command}`: {why}"));
                }
            }
        }
        _ => {}
    }
    problems
}

#[test]
fn every_block_of_the_readme_and_the_docs_is_checked_and_holds() {
    let scripts_up = printed_by_scripts_up();
    let mut problems = Vec::new();
    let mut configs = 0;
    for (doc, text) in documents() {
        for block in blocks(&text) {
            configs += usize::from(block.marker.as_deref() == Some("filter-config"));
            problems.extend(check(&doc, &block, &scripts_up));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        configs >= 5,
        "only {configs} filter configurations found in the docs"
    );
}

/// GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown file's headings (outside fenced blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The relative link targets (`](path)`, `](path#anchor)`, `](#anchor)`) of a markdown text.
fn relative_links(markdown: &str) -> Vec<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_relative_link_of_the_readme_and_the_docs_resolves() {
    let mut broken = Vec::new();
    for (doc, text) in documents().into_iter().chain(readmes()) {
        let dir = root().join(&doc).parent().unwrap().to_path_buf();
        for link in relative_links(&text) {
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let file = if path.is_empty() {
                root().join(&doc)
            } else {
                dir.join(path)
            };
            if !file.exists() {
                broken.push(format!("{doc}: {link}: no such file"));
            } else if !fragment.is_empty() && file.extension().is_some_and(|e| e == "md") {
                let target = std::fs::read_to_string(&file).unwrap();
                if !anchors(&target).iter().any(|a| a == fragment) {
                    broken.push(format!("{doc}: {link}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    assert_eq!(
        anchor(" Several gateways: the hub"),
        "several-gateways-the-hub"
    );
    assert_eq!(anchor("DPoP (RFC 9449)"), "dpop-rfc-9449");
    assert_eq!(anchor("`revocation_feed`"), "revocation_feed");
    assert_eq!(
        anchor("Once per Envoy: keys and the feed"),
        "once-per-envoy-keys-and-the-feed"
    );
    assert_eq!(
        relative_links("[a](x.md#y) [b](https://e) [c](#z)"),
        ["x.md#y", "#z"]
    );
}

#[test]
fn the_operations_page_names_every_counter_both_modules_define() {
    let text = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let missing: Vec<&str> = filter::counters::NAMES
        .iter()
        .copied()
        .filter(|name| {
            // `denied.<reason>` and `denied.dpop_<reason>` are listed by their reason.
            let short = name.strip_prefix("denied.").unwrap_or(name);
            let shorter = short.strip_prefix("dpop_").unwrap_or(short);
            ![short, shorter]
                .iter()
                .any(|n| text.contains(&format!("`{n}`")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md does not name {missing:?}"
    );
}

#[test]
fn every_configuration_in_bring_your_own_idp_is_accepted() {
    let text = std::fs::read_to_string(root().join("docs/bring-your-own-idp.md")).unwrap();
    let configs: Vec<Block> = blocks(&text)
        .into_iter()
        .filter(|b| b.marker.as_deref() == Some("filter-config"))
        .collect();
    assert!(configs.len() >= 2, "found {} configurations", configs.len());
    for block in configs {
        let config = FilterConfig::from_json(block.text.as_bytes())
            .unwrap_or_else(|e| panic!("line {}: {e}\n{}", block.line, block.text));
        assert!(!config.providers.is_empty());
    }
}

#[test]
fn the_reader_of_blocks_finds_them_with_their_markers() {
    let text =
        "text\n<!-- filter-config -->\n```json\n{\"providers\": []}\n```\n\n```jsonc\n{}\n```\n";
    let found = blocks(text);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].marker.as_deref(), Some("filter-config"));
    assert_eq!(found[0].text, "{\"providers\": []}\n");
    assert_eq!(
        (found[1].lang.as_str(), found[1].marker.as_deref()),
        ("jsonc", None)
    );
}

#[test]
fn a_broken_or_unmarked_block_would_fail() {
    let up = printed_by_scripts_up();
    let problems = |text: &str| -> usize {
        blocks(text)
            .iter()
            .map(|b| check("t.md", b, &up).len())
            .sum()
    };
    // An empty provider list, an unknown field, a bad bound: refused by the parser.
    assert_eq!(
        problems("<!-- filter-config -->\n```json\n{\"providers\": []}\n```\n"),
        1
    );
    let unknown = r#"{"providers": [{"issuer": "https://i", "audiences": ["a"], "algorithms": ["ES256"],
        "jwks": {"cluster": "idp", "path": "/jwks"}, "leway_seconds": 3}]}"#;
    assert_eq!(
        problems(&format!(
            "<!-- filter-config -->\n```json\n{unknown}\n```\n"
        )),
        1
    );
    assert_eq!(
        problems(&format!(
            "<!-- filter-config -->\n```json\n{}\n```\n",
            unknown.replace("leway", "leeway")
        )),
        0
    );
    // A configuration unmarked is still one (it names providers), with comments too.
    assert_eq!(problems("```json\n{\"providers\": []}\n```\n"), 1);
    assert_eq!(
        problems("```jsonc\n{\"providers\": [] // none\n}\n```\n"),
        1
    );
    let commented = unknown
        .replace("leway", "leeway")
        .replace("[\"ES256\"],", "[\"ES256\"], // \"the allow-list\"");
    assert_eq!(problems(&format!("```jsonc\n{commented}\n```\n")), 0);
    // Other JSON must be JSON; YAML and TOML must be copies of shipped files, or marked.
    assert_eq!(problems("```json\n{}\n```\n```json\n{x}\n```\n"), 1);
    assert_eq!(
        problems("```yaml\na: 1\n```\n```toml\nno_such_key = 1\n```\n"),
        2
    );
    let copies = "```yaml\n# a comment\nkind: WasmPlugin\n```\n```toml\n[[clients]]\nid = \"demo-client\"\n```\n";
    assert_eq!(problems(copies), 0);
    // A copy that is not in its file, an invented command.
    assert_eq!(
        problems("<!-- excerpt-of: envoy/envoy.yaml -->\n```yaml\nno_such_key: 1\n```\n"),
        1
    );
    assert_eq!(
        problems("```sh\nscripts/deploy\nkubectl apply -f x.yaml\n```\n"),
        2
    );
    assert_eq!(
        problems("```sh\ncargo test -p e2e --test e2e -- no_such_area::\n```\n"),
        1
    );
    assert_eq!(
        problems("```sh\nidp serve --config idp/idp.toml --no-such-flag 1\n```\n"),
        1
    );
    assert_eq!(
        problems("<!-- printed-by: scripts/up -->\n```sh\ncurl -i http://127.0.0.1:1/x\n```\n"),
        1
    );
    // What holds: a real copy, real commands, the printed tour.
    assert_eq!(
        problems(
            "<!-- excerpt-of: envoy/envoy.yaml -->\n```yaml\n\"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n```\n"
        ),
        0
    );
    assert_eq!(
        problems(
            "```sh\nFUZZ_SECONDS=60 scripts/fuzz token   # a comment\ncargo test -p filter --test docs_configs\n```\n"
        ),
        0
    );
    assert_eq!(
        problems(
            "<!-- printed-by: scripts/up -->\n```sh\ncurl -i http://127.0.0.1:10000/api/hello\n```\n"
        ),
        0
    );
}
