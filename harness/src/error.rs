//! Why a sandbox could not be run. Each message says what to do next.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "creating namespaces needs root: run as root (e.g. `sudo -E cargo sandbox ...`); \
         rootless sandboxes with user namespaces are not supported yet"
    )]
    NotRoot,

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
