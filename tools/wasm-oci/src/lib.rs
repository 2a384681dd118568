//! Packs a proxy-wasm module as an OCI image that Istio's `WasmPlugin` (`url: oci://…`) pulls, and
//! reads the module back out of such an image the way Istio's agent does.
//!
//! Format: the *compat* variant of the Wasm image specification (solo-io/wasm `spec-compat.md`),
//! which Istio's image fetcher (`pkg/wasm/imagefetcher.go`) tries first:
//!
//! - an OCI image manifest (`application/vnd.oci.image.manifest.v1+json`) with the annotation
//!   `module.wasm.image/variant: compat`;
//! - exactly one layer, `application/vnd.oci.image.layer.v1.tar+gzip`, holding one file,
//!   `plugin.wasm`, the module byte for byte;
//! - a standard OCI image config (`application/vnd.oci.image.config.v1+json`, `wasm`/`wasip1`,
//!   `rootfs.diff_ids` the uncompressed layer's digest).
//!
//! Istio's *oci* variant (custom media types `application/vnd.module.wasm.content.layer.v1+wasm`
//! and `application/vnd.module.wasm.config.v1+json`) needs exactly two layers in Istio's fetcher; a
//! single layer with the Wasm media type is refused there ("number of layers must be 2"), so the
//! compat variant is the single-layer format Istio actually pulls, and every registry and tool
//! (skopeo, crane, docker) handles its standard media types.
//!
//! The image is reproducible: the same module gives the same manifest digest (tar header with
//! mtime 0, uid/gid 0, mode 0644; gzip header with mtime 0; no `created` date). That digest is what
//! the `WasmPlugin`'s `sha256` field holds (Istio compares it with the pulled manifest's digest).
//!
//! The JSON documents (manifest, config, index, `oci-layout`) are the `oci-spec` crate's types;
//! the layer is made with `tar` and `flate2`.

use flate2::Compression;
use flate2::read::GzDecoder;
use oci_spec::image::{
    ANNOTATION_REF_NAME, ANNOTATION_TITLE, Arch, Descriptor, DescriptorBuilder, Digest,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, OciLayoutBuilder, Os, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The file inside the layer (spec-compat.md; Istio looks for this base name).
pub const WASM_FILE_NAME: &str = "plugin.wasm";
/// The manifest annotation the compat variant requires with a `tar+gzip` OCI layer.
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
pub const VARIANT_COMPAT: &str = "compat";
/// A Wasm module starts with `\0asm` and version 1 (Istio checks this too).
const WASM_MAGIC: [u8; 8] = [0, b'a', b's', b'm', 1, 0, 0, 0];

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of the manifest: the image's digest, the `WasmPlugin`'s `sha256` (hex part).
    pub manifest_digest: String,
    pub manifest_size: u64,
    /// `sha256:<hex>` of the compressed layer blob.
    pub layer_digest: String,
    pub layer_size: u64,
    /// `sha256:<hex>` of the module itself.
    pub module_digest: String,
    pub module_size: u64,
}

impl Image {
    /// The hex part of the manifest digest, as a `WasmPlugin`'s `sha256` wants it.
    pub fn manifest_sha256_hex(&self) -> &str {
        self.manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(&self.manifest_digest)
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn err<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// The single layer: a gzipped tar holding `plugin.wasm`, reproducibly.
fn layer(module: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, WASM_FILE_NAME, module)
        .map_err(err("tar"))?;
    let uncompressed = tar.into_inner().map_err(err("tar"))?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    std::io::Write::write_all(&mut gz, &uncompressed).map_err(err("gzip"))?;
    let compressed = gz.finish().map_err(err("gzip"))?;
    Ok((uncompressed, compressed))
}

fn descriptor(
    media_type: MediaType,
    bytes: &[u8],
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor, String> {
    let digest = Digest::from_str(&sha256(bytes)).map_err(err("digest"))?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .size(bytes.len() as u64)
        .digest(digest);
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    builder.build().map_err(err("descriptor"))
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("not a sha256 digest: {digest}"))?;
    Ok(layout.join("blobs").join("sha256").join(hex))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Result<String, String> {
    let digest = sha256(bytes);
    let path = blob_path(layout, &digest)?;
    std::fs::write(&path, bytes).map_err(err("write blob"))?;
    Ok(digest)
}

/// Writes `module` as a compat-variant Wasm image into the OCI image layout `layout` (created or
/// replaced; an existing directory must be empty or an OCI layout), tagged `tag` (the index's
/// `org.opencontainers.image.ref.name`).
pub fn write_layout(module: &[u8], layout: &Path, tag: &str) -> Result<Image, String> {
    if !module.starts_with(&WASM_MAGIC) {
        return Err("not a Wasm module (no \\0asm version 1 header)".to_owned());
    }
    if layout.exists() {
        let is_layout = layout.join("oci-layout").is_file();
        let is_empty = std::fs::read_dir(layout)
            .map_err(err("layout dir"))?
            .next()
            .is_none();
        if !is_layout && !is_empty {
            return Err(format!(
                "{} exists and is neither empty nor an OCI layout",
                layout.display()
            ));
        }
        std::fs::remove_dir_all(layout).map_err(err("clear layout"))?;
    }
    std::fs::create_dir_all(layout.join("blobs").join("sha256")).map_err(err("layout dir"))?;

    let (uncompressed, compressed) = layer(module)?;
    let layer_digest = write_blob(layout, &compressed)?;
    let layer = descriptor(
        MediaType::ImageLayerGzip,
        &compressed,
        Some(HashMap::from([(
            ANNOTATION_TITLE.to_owned(),
            WASM_FILE_NAME.to_owned(),
        )])),
    )?;

    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Wasm)
        .os(Os::Other("wasip1".to_owned()))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![sha256(&uncompressed)])
                .build()
                .map_err(err("rootfs"))?,
        )
        .build()
        .map_err(err("config"))?;
    let config_bytes = config.to_string().map_err(err("config"))?.into_bytes();
    write_blob(layout, &config_bytes)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config_bytes, None)?)
        .layers(vec![layer])
        .annotations(HashMap::from([(
            VARIANT_ANNOTATION.to_owned(),
            VARIANT_COMPAT.to_owned(),
        )]))
        .build()
        .map_err(err("manifest"))?;
    let manifest_bytes = manifest.to_string().map_err(err("manifest"))?.into_bytes();
    let manifest_digest = write_blob(layout, &manifest_bytes)?;

    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![descriptor(
            MediaType::ImageManifest,
            &manifest_bytes,
            Some(HashMap::from([(
                ANNOTATION_REF_NAME.to_owned(),
                tag.to_owned(),
            )])),
        )?])
        .build()
        .map_err(err("index"))?;
    index
        .to_file(layout.join("index.json"))
        .map_err(err("index.json"))?;
    OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(err("oci-layout"))?
        .to_file(layout.join("oci-layout"))
        .map_err(err("oci-layout"))?;

    Ok(Image {
        manifest_digest,
        manifest_size: manifest_bytes.len() as u64,
        layer_digest,
        layer_size: compressed.len() as u64,
        module_digest: sha256(module),
        module_size: module.len() as u64,
    })
}

fn read_blob(layout: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, String> {
    let digest = descriptor.digest().to_string();
    let bytes = std::fs::read(blob_path(layout, &digest)?).map_err(err(&digest))?;
    if sha256(&bytes) != digest || bytes.len() as u64 != descriptor.size() {
        return Err(format!("blob {digest} does not match its descriptor"));
    }
    Ok(bytes)
}

/// A module read back out of an image, with the image's manifest digest.
#[derive(Debug)]
pub struct Pulled {
    pub manifest_digest: String,
    pub module: Vec<u8>,
}

/// Reads the module tagged `tag` (None: the only image) out of the OCI layout `layout` as Istio's
/// agent does for a compat image: the manifest's last layer must be an OCI `tar+gzip` layer, and
/// the module is its `plugin.wasm`. Every blob is checked against its digest and size.
pub fn read_layout(layout: &Path, tag: Option<&str>) -> Result<Pulled, String> {
    let index = ImageIndex::from_file(layout.join("index.json")).map_err(err("index.json"))?;
    let manifests = index.manifests();
    let chosen = match tag {
        None if manifests.len() == 1 => manifests.first(),
        None => {
            return Err(format!(
                "{} images in the layout: name one",
                manifests.len()
            ));
        }
        Some(tag) => manifests.iter().find(|m| {
            m.annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF_NAME))
                .is_some_and(|t| t == tag)
        }),
    }
    .ok_or_else(|| format!("no image tagged {tag:?}"))?;
    let manifest_bytes = read_blob(layout, chosen)?;
    let manifest =
        ImageManifest::from_reader(manifest_bytes.as_slice()).map_err(err("manifest"))?;
    let layer = manifest.layers().last().ok_or("the image has no layer")?;
    if layer.media_type() != &MediaType::ImageLayerGzip {
        return Err(format!(
            "last layer is {}, not {}",
            layer.media_type(),
            MediaType::ImageLayerGzip
        ));
    }
    let compressed = read_blob(layout, layer)?;
    let mut archive = tar::Archive::new(GzDecoder::new(compressed.as_slice()));
    for entry in archive.entries().map_err(err("layer"))? {
        let mut entry = entry.map_err(err("layer"))?;
        let path = entry.path().map_err(err("layer"))?.into_owned();
        if path.file_name().is_some_and(|n| n == WASM_FILE_NAME) {
            let mut module = Vec::new();
            entry.read_to_end(&mut module).map_err(err("layer"))?;
            if !module.starts_with(&WASM_MAGIC) {
                return Err(format!("{WASM_FILE_NAME} is not a Wasm module"));
            }
            return Ok(Pulled {
                manifest_digest: chosen.digest().to_string(),
                module,
            });
        }
    }
    Err(format!("no {WASM_FILE_NAME} in the layer"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn module(extra: &[u8]) -> Vec<u8> {
        [&WASM_MAGIC[..], extra].concat()
    }

    #[test]
    fn round_trip_is_byte_identical_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let m = module(b"\x00\x04name\x00");
        let a = write_layout(&m, &dir.path().join("a"), "v1").unwrap();
        let b = write_layout(&m, &dir.path().join("b"), "v1").unwrap();
        assert_eq!(a, b, "same module, same digests");
        let pulled = read_layout(&dir.path().join("a"), Some("v1")).unwrap();
        assert_eq!(pulled.module, m);
        assert_eq!(pulled.manifest_digest, a.manifest_digest);
        assert_eq!(a.module_digest, sha256(&m));
        // another module, another digest
        let c = write_layout(&module(b"x"), &dir.path().join("a"), "v1").unwrap();
        assert_ne!(c.manifest_digest, a.manifest_digest);
    }

    #[test]
    fn manifest_is_the_compat_variant() {
        let dir = tempfile::tempdir().unwrap();
        let image = write_layout(&module(b""), dir.path(), "v1").unwrap();
        let raw = std::fs::read(blob_path(dir.path(), &image.manifest_digest).unwrap()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            json["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(
            json["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(json["annotations"]["module.wasm.image/variant"], "compat");
        let layout: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("oci-layout")).unwrap()).unwrap();
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    }

    #[test]
    fn refuses_what_is_not_wasm_and_corrupt_blobs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_layout(b"not wasm", dir.path(), "v1").is_err());
        let image = write_layout(&module(b"abc"), dir.path(), "v1").unwrap();
        assert!(read_layout(dir.path(), Some("other")).is_err());
        let layer = blob_path(dir.path(), &image.layer_digest).unwrap();
        let mut bytes = std::fs::read(&layer).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&layer, bytes).unwrap();
        let e = read_layout(dir.path(), Some("v1")).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn does_not_clobber_an_unrelated_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "x").unwrap();
        assert!(write_layout(&module(b""), dir.path(), "v1").is_err());
        assert!(dir.path().join("precious.txt").exists());
    }
}
