//! Why a sandbox could not be run. Each message says what to do next.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "not root, and this machine does not let users create user namespaces: {0}; or run as root"
    )]
    NoUserNamespaces(String),

    #[error(
        "{0}. Without root, sandboxes need cgroups delegated to your user: on cgroup v2, run \
         under `systemd-run --user --scope -p Delegate=yes cargo sandbox ...` or pass \
         --cgroup-parent DIR (a cgroup you own); on cgroup v1, have root create and chown one \
         cgroup per controller and pass each with --cgroup-parent; or run with --allow-degraded \
         (no caps, and reports say so). `cargo sandbox doctor` shows what this machine allows"
    )]
    RootlessCgroups(Box<SandboxError>),

    #[error("cannot create the sandbox's namespaces ({0}); on containers this usually needs --privileged or CAP_SYS_ADMIN")]
    Namespaces(#[source] io::Error),

    #[error("no usable cgroup hierarchy: {0}")]
    NoCgroups(String),

    #[error("the cgroup controller `{controller}` is not available: {remedy}")]
    MissingController { controller: String, remedy: String },

    #[error("cgroup v2 cannot delegate controllers to sandboxes here: {0}")]
    NotDelegated(String),

    #[error("cgroup {action} failed at {}: {source}", path.display())]
    Cgroup {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("the command `{program}` was not found ({})", if program.contains('/') { "no such file inside the sandbox" } else { "looked in PATH inside the sandbox" })]
    CommandNotFound { program: String },

    #[error("the command `{program}` cannot be run: {message}")]
    CommandNotExecutable { program: String, message: String },

    #[error("the sandbox init failed while {stage}: {message}")]
    Init { stage: String, message: String },

    #[error(
        "the sandbox init died before reporting ({0}); with --userns, root in the sandbox is an \
         unprivileged host user, who must be able to read and run the init program and the \
         test binaries (not under /root, for example)"
    )]
    InitDiedInUserNamespace(String),

    #[error("the sandbox init died before reporting ({0})")]
    InitDied(String),

    #[error("the sandbox spec is not usable: {0}")]
    BadSpec(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        SandboxError::Io {
            context: context.into(),
            source,
        }
    }
}
