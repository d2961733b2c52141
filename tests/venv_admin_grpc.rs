//! `venv admin` installs a grpcio/protobuf pair the checked-in gRPC stubs accept: a gRPC
//! backend started in it answers.

#[path = "support/ids.rs"]
mod ids;
#[path = "support/venv.rs"]
mod support;

use support::{Home, Mode};

fn major(version: &str) -> u64 {
    version.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn admin_installs_a_pair_the_grpc_backend_runs_with() {
    let home = Home::new(Mode::Uv);
    let admin = home.json(&["venv", "admin", "--json"]);
    assert_eq!(admin["action"], "created");
    let packages = home.packages("admin");
    let version = |name: &str| {
        packages
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {packages:?}"))
            .1
            .clone()
    };
    // The stubs' protobuf gencode is 6.x: protobuf supports it within major version 6 only.
    assert_eq!(major(&version("protobuf")), 6, "{packages:?}");

    let out = home.ok(&["start", "rpc", "--detach"]);
    let id = ids::id_of(&out);
    let answer = home.run(&["eval", &id, "6*7"]);
    home.ok(&["stop", &id]);
    assert!(answer.status.success(), "{answer:?}");
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "42");

    // An admin environment with a protobuf 7 (as an older `admin` installed) is repaired.
    home.ok(&["pkg", "install", "admin", "protobuf>=7"]);
    let protobuf = |home: &Home| {
        let packages = home.packages("admin");
        packages
            .into_iter()
            .find(|(n, _)| n == "protobuf")
            .unwrap()
            .1
    };
    assert_eq!(major(&protobuf(&home)), 7);
    let repaired = home.json(&["venv", "admin", "--json"]);
    assert_eq!(repaired["action"], "repaired", "{repaired}");
    assert_eq!(major(&protobuf(&home)), 6);
}
