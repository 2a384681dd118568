//! Every filter configuration the docs show is one the filter accepts: the ```json blocks of
//! docs/bring-your-own-idp.md go through the configuration reader Envoy's filter uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use filter::config::FilterConfig;

fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```json") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_configuration_in_bring_your_own_idp_is_accepted() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/bring-your-own-idp.md");
    let text = std::fs::read_to_string(path).unwrap();
    let blocks = json_blocks(&text);
    assert!(blocks.len() >= 3, "found {} json blocks", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let config = FilterConfig::from_json(block.as_bytes())
            .unwrap_or_else(|e| panic!("block {i} of {path}: {e}\n{block}"));
        assert!(!config.providers.is_empty());
    }
}

#[test]
fn the_reader_of_blocks_finds_them_and_a_broken_one_would_fail() {
    let blocks = json_blocks("text\n```json\n{\"providers\": []}\n```\n```jsonc\n{}\n```\n");
    assert_eq!(blocks, ["{\"providers\": []}\n"]);
    assert!(FilterConfig::from_json(blocks[0].as_bytes()).is_err());
}
