//! Compiles `proto/` (at the workspace root) with protox (pure Rust, no system `protoc`) and
//! generates the prost messages and tonic clients/servers; also writes the encoded
//! `FileDescriptorSet` for server reflection.

use std::path::PathBuf;

const PROTOS: [&str; 3] = ["auth/v1/auth.proto", "connection/v1/connection.proto", "message/v1/message.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let fds = protox::compile(PROTOS, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("chat_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
