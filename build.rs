//! Build the gRPC client of `python/beep_backend/backend.proto` with protox (no protoc).

fn main() {
    let dir = "python/beep_backend";
    let proto = format!("{dir}/backend.proto");
    println!("cargo:rerun-if-changed={proto}");
    let fds = match protox::compile([&proto], [dir]) {
        Ok(fds) => fds,
        Err(err) => panic!("Failed to compile `{proto}`: {err}"),
    };
    if let Err(err) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)
    {
        panic!("Failed to generate the gRPC client from `{proto}`: {err}");
    }
}
