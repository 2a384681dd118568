//! `wasm-oci build MODULE.wasm LAYOUT_DIR [TAG]`: writes MODULE as an Istio-pullable OCI image
//! (Wasm image spec, compat variant) into the OCI image layout LAYOUT_DIR and prints its digest.
//! `wasm-oci extract LAYOUT_DIR OUT.wasm [TAG]`: reads the module back out, as Istio's agent does.
//!
//! Push the layout to a registry with skopeo, e.g.
//! `skopeo copy oci:LAYOUT_DIR:TAG docker://REGISTRY/oauth2-gateway:TAG`.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: wasm-oci build MODULE.wasm LAYOUT_DIR [TAG]\n       wasm-oci extract LAYOUT_DIR OUT.wasm [TAG]";

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd, module, layout, rest @ ..] if cmd == "build" && rest.len() <= 1 => {
            let tag = rest.first().map_or("latest", String::as_str);
            let bytes = std::fs::read(module).map_err(|e| format!("{module}: {e}"))?;
            let image = wasm_oci::write_layout(&bytes, Path::new(layout), tag)?;
            println!("image:    oci:{layout}:{tag}");
            println!("digest:   {}", image.manifest_digest);
            println!(
                "manifest: {} bytes; layer {} ({} bytes, tar+gzip of {}); module {} ({} bytes)",
                image.manifest_size,
                image.layer_digest,
                image.layer_size,
                wasm_oci::WASM_FILE_NAME,
                image.module_digest,
                image.module_size
            );
            println!("WasmPlugin sha256: {}", image.manifest_sha256_hex());
            Ok(())
        }
        [cmd, layout, out, rest @ ..] if cmd == "extract" && rest.len() <= 1 => {
            let pulled =
                wasm_oci::read_layout(Path::new(layout), rest.first().map(String::as_str))?;
            std::fs::write(out, &pulled.module).map_err(|e| format!("{out}: {e}"))?;
            println!("digest: {}", pulled.manifest_digest);
            println!("module: {out} ({} bytes)", pulled.module.len());
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-oci: {e}");
            ExitCode::FAILURE
        }
    }
}
