//! Build the gRPC code of the `.proto` files in `python/beep_backend` with protox (no protoc):
//! the backend client (`backend.proto`) and the host API server and client (`host.proto`).

fn compile(proto: &str, server: bool) {
    let dir = "python/beep_backend";
    let path = format!("{dir}/{proto}");
    println!("cargo:rerun-if-changed={path}");
    let fds = match protox::compile([&path], [dir]) {
        Ok(fds) => fds,
        Err(err) => panic!("Failed to compile `{path}`: {err}"),
    };
    if let Err(err) = tonic_prost_build::configure()
        .build_client(true)
        .build_server(server)
        .compile_fds(fds)
    {
        panic!("Failed to generate gRPC code from `{path}`: {err}");
    }
}

fn main() {
    compile("backend.proto", false);
    compile("host.proto", true);
}
