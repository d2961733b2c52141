//! The `admin` environment: the packages the backends need (the gRPC transport needs
//! `grpcio` and `protobuf`; the HTTP and pipe transports need only the standard library).
//!
//! `admin` creates it, or repairs it: a broken one (base interpreter gone, never
//! finished) is recreated, missing packages are installed. On a healthy, complete
//! environment it reads a few files and changes nothing.

use serde::Serialize;

use super::package::{self, MinimumRequirement, PackageRequest};
use super::{CreateOptions, EnvName, Environment, Environments, Error};
use crate::Reporter;

/// The admin environment's name.
pub const ADMIN_ENV: &str = "admin";

/// What the backends need in the admin environment.
pub const ADMIN_REQUIREMENTS: &[&str] = &["grpcio>=1.60", "protobuf>=5.26"];

/// What `admin` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AdminAction {
    /// It did not exist and was created.
    Created,
    /// It was broken and was recreated.
    Recreated,
    /// It was healthy but missed these requirements, now installed.
    Repaired { installed: Vec<String> },
    /// It was healthy and complete: nothing changed.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminOutcome {
    #[serde(flatten)]
    pub action: AdminAction,
    pub environment: Environment,
}

impl Environments {
    /// Create or repair the admin environment.
    #[tracing::instrument(skip_all)]
    pub async fn admin(&self, reporter: &dyn Reporter) -> Result<AdminOutcome, Error> {
        let name = EnvName::parse(ADMIN_ENV)?;
        let _lock = self.lock(&name, reporter).await?;
        if let Ok(env) = self.get(&name)
            && env.healthy
        {
            let installed = package::list(&env.path).map_err(|source| Error::Read {
                path: env.path.clone(),
                source,
            })?;
            let missing: Vec<String> = ADMIN_REQUIREMENTS
                .iter()
                .filter(|r| !MinimumRequirement::parse(r).is_met_by(&installed))
                .map(|r| r.to_string())
                .collect();
            if missing.is_empty() {
                return Ok(AdminOutcome {
                    action: AdminAction::Unchanged,
                    environment: env,
                });
            }
            let tool = self.tool(&name, Some(&env.python), reporter).await?;
            let request = PackageRequest::new(missing.clone(), Vec::new());
            self.install_locked(&env, &tool, &request, reporter).await?;
            return Ok(AdminOutcome {
                action: AdminAction::Repaired { installed: missing },
                environment: self.get(&name)?,
            });
        }
        let existed = std::fs::symlink_metadata(self.dir(&name)).is_ok();
        if existed {
            self.delete_locked(&name)?;
        }
        let runtime = self.runtime(&name, None)?;
        let tool = self.tool(&name, Some(&runtime.python), reporter).await?;
        let options = CreateOptions {
            profile: Some(ADMIN_ENV.to_string()),
            packages: PackageRequest::new(
                ADMIN_REQUIREMENTS.iter().map(|r| r.to_string()).collect(),
                Vec::new(),
            ),
            ..CreateOptions::default()
        };
        let environment = self
            .create_locked(&name, &runtime, &tool, &options, reporter)
            .await?;
        Ok(AdminOutcome {
            action: if existed {
                AdminAction::Recreated
            } else {
                AdminAction::Created
            },
            environment,
        })
    }
}
