//! `config-schema write`: writes docs/filter-config.schema.json and docs/wasmplugin.schema.json
//! (run from the repository root). `config-schema check FILE...`: checks filter configurations
//! (`.json`) and WasmPlugins' `pluginConfig` (`.yaml`) against the schema and the filter's parser;
//! exit status 1 when one is invalid.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((command, [])) if command == "write" => {
            config_schema::write(std::path::Path::new(".")).map(|paths| {
                paths
                    .iter()
                    .map(|p| format!("wrote {p}\n"))
                    .collect::<String>()
            })
        }
        Some((command, files)) if command == "check" => config_schema::check(files),
        _ => Err("usage: config-schema write | config-schema check FILE...".to_owned()),
    };
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(report) => {
            eprint!("{report}");
            if !report.ends_with('\n') {
                eprintln!();
            }
            ExitCode::FAILURE
        }
    }
}
