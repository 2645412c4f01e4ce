//! Generates the etcd v3 client messages that the consensus anchor needs from
//! `proto/etcd_kv.proto`.

use std::error::Error;
use std::path::PathBuf;

const PROTO_FILE: &str = "etcd_kv.proto";

fn main() -> Result<(), Box<dyn Error>> {
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join(PROTO_FILE).display()
    );

    let descriptors = protox::compile([PROTO_FILE], [&proto_root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
