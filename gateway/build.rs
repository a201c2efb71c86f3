//! Generates the node-control gRPC service (`proto/node.proto`) and its descriptor set, which
//! the reflection service serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto/node.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out.join("node_descriptor.bin"))
        .compile_protos(&["proto/node.proto"], &["proto"])?;
    Ok(())
}
