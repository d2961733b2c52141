//! The backend's token reaches it over stdin: user code and its children cannot read it from
//! any environment block, and the backend still authenticates with it.
#![cfg(target_os = "linux")]

#[path = "support/backend.rs"]
mod support;

use beep_host::backend::{BackendSpec, BackendState, PyValue, Supervisor, Transport, client};
use serde_json::json;
use support::Home;

/// User code: its own environment block, stdin, and a child process reading the block of
/// its parent (the backend).
const LOOK_EVERYWHERE: &str = r#"
import json, os, subprocess, sys
child = "import os; print(open('/proc/%d/environ' % os.getppid(), 'rb').read().decode('latin-1'))"
json.dumps({
    "os_environ": os.environ.get("BEEP_BACKEND_TOKEN"),
    "stdin": sys.stdin.read(),
    "proc_self": open("/proc/self/environ", "rb").read().decode("latin-1"),
    "proc_parent": subprocess.run([sys.executable, "-c", child], capture_output=True, check=True).stdout.decode("latin-1"),
})
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_code_and_its_children_never_see_the_token() {
    let home = Home::new();
    let env = home.plain_env("admin");
    let supervisor = Supervisor::new(home.paths.clone());
    for transport in [Transport::Pipe, Transport::Http] {
        let id = supervisor
            .start(BackendSpec::new(env.clone(), transport))
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        let status = supervisor.status(&id).unwrap();
        assert_eq!(status.state, BackendState::Ready);
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&status.record).unwrap()).unwrap();
        let token = record["token"]
            .as_str()
            .expect("the record holds the token");
        assert_eq!(token.len(), 64);

        // The backend authenticates with the token it read from stdin...
        let client = supervisor.client(&id).await.unwrap();
        assert_eq!(client.eval("6*7").await.unwrap(), PyValue::Json(json!(42)));
        // ...and with nothing else.
        let address = status.address.clone().unwrap();
        assert!(matches!(
            client::connect(transport, &address, &"0".repeat(64)).await,
            Err(client::Error::Unauthorized { .. })
        ));

        let out = client.exec(LOOK_EVERYWHERE, None).await.unwrap();
        let PyValue::Json(serde_json::Value::String(text)) = out.value else {
            panic!("{transport}: {out:?}");
        };
        let seen: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(seen["os_environ"], json!(null), "{transport}");
        assert_eq!(
            seen["stdin"],
            json!(""),
            "{transport}: stdin is the null device"
        );
        for place in ["proc_self", "proc_parent"] {
            let block = seen[place].as_str().unwrap();
            assert!(
                block.contains("BEEP_ENV_NAME=admin"),
                "{transport}: {place} was read"
            );
            assert!(
                !block.contains(token),
                "{transport}: the token is in {place}"
            );
        }
        assert!(
            !std::fs::read_to_string(format!("/proc/{}/cmdline", status.pid.unwrap()))
                .unwrap()
                .contains(token),
            "{transport}: the token is on the command line"
        );
        supervisor.stop(&id).await.unwrap();
    }
}
