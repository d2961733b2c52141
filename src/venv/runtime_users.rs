//! Which environments (and the backends running in them) use a runtime, and removing a
//! runtime only when nothing does. Here, not in `runtime`: runtimes sit below environments.

use crate::runtime::{self, Removed, Runtime, RuntimeUsers, Runtimes};

use super::{EnvName, Environments, Error, RunningBackends};

impl Environments {
    /// What uses `runtime`: the environments built on it (their `beep-env.json` runtime or
    /// their `pyvenv.cfg` home), the backends `backends` reports running in them, and
    /// those it reports running on the runtime itself.
    pub fn runtime_users(
        &self,
        runtime: &Runtime,
        backends: &dyn RunningBackends,
    ) -> Result<RuntimeUsers, Error> {
        let prefix = fs_err::canonicalize(&runtime.path).unwrap_or_else(|_| runtime.path.clone());
        let mut users = RuntimeUsers::default();
        for env in self.list()? {
            let by_key = env.runtime.as_deref() == Some(runtime.key.as_str());
            let by_home = env.home.as_deref().is_some_and(|home| {
                let home = fs_err::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
                home.starts_with(&prefix) || home.starts_with(&runtime.path)
            });
            if !(by_key || by_home) {
                continue;
            }
            if let Ok(name) = EnvName::parse(&env.name) {
                for b in backends.running_in(&name) {
                    users.backends.push(format!("{} (in `{}`)", b.id, env.name));
                }
            }
            users.environments.push(env.name);
        }
        users.runtime_backends = backends
            .running_on_runtime(&runtime.key)
            .into_iter()
            .map(|b| b.id)
            .collect();
        Ok(users)
    }

    /// Delete a managed runtime unless environments are built on it or backends (as
    /// `backends` reports) run in them; see [`Runtimes::remove_with`] for `force`.
    pub fn remove_runtime(
        &self,
        request: &str,
        force: bool,
        backends: &dyn RunningBackends,
    ) -> Result<Removed, runtime::Error> {
        Runtimes::new(self.paths.clone(), self.config.clone()).remove_with(
            request,
            force,
            &|runtime| {
                self.runtime_users(runtime, backends)
                    .map_err(|source| runtime::Error::Users {
                        key: runtime.key.clone(),
                        source: Box::new(source),
                    })
            },
        )
    }
}
