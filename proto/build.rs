//! Compiles `proto/*.proto` with the vendored `protoc`, so no system install is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &["admin.proto", "edge.proto"], &["."])?;
    println!("cargo:rerun-if-changed=admin.proto");
    println!("cargo:rerun-if-changed=edge.proto");
    Ok(())
}
