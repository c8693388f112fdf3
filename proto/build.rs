//! Compiles `proto/*.proto` with the vendored `protoc`, so no system install is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(&protoc);
    // Admin messages that carry edge types (a queued message) use the edge module's.
    config.extern_path(".domainsec.edge.v1", "crate::edge");
    tonic_prost_build::configure().compile_with_config(config, &["admin.proto"], &["."])?;
    // The edge port holds one long-lived stream per edge: small codec buffers
    // keep an idle edge cheap (they grow for a large message and shrink back).
    let mut config = prost_build::Config::new();
    config.protoc_executable(&protoc);
    tonic_prost_build::configure().codec_path("crate::codec::CompactCodec").compile_with_config(
        config,
        &["edge.proto"],
        &["."],
    )?;
    println!("cargo:rerun-if-changed=admin.proto");
    println!("cargo:rerun-if-changed=edge.proto");
    Ok(())
}
