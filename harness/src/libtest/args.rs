//! libtest's command line, as libtest-mimic parses it.

use std::ffi::OsString;
use std::ops::{Deref, DerefMut};

/// libtest-mimic's [`libtest_mimic::Arguments`], read the same way, with one thing first: when
/// this process is a sandbox's init (the sandbox's PID 1 is the test binary re-executed), it runs
/// the init and never returns. Its fields are reached through `Deref`, so
/// `args.test_threads = Some(1)` works as with libtest-mimic.
#[derive(Clone, Debug, Default)]
pub struct Arguments(libtest_mimic::Arguments);

impl Arguments {
    /// Parses `std::env::args()`; on bad arguments prints the error and exits, as libtest does.
    pub fn from_args() -> Arguments {
        crate::run_if_requested();
        Arguments(libtest_mimic::Arguments::from_args())
    }

    /// Like [`Arguments::from_args`] over `iter`, whose first item is the executable's name.
    // libtest-mimic's name, kept so ported suites compile unchanged.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(iter: I) -> Arguments
    where
        I: IntoIterator,
        I::Item: Into<OsString> + Clone,
    {
        crate::run_if_requested();
        Arguments(libtest_mimic::Arguments::from_iter(iter))
    }
}

impl From<libtest_mimic::Arguments> for Arguments {
    fn from(args: libtest_mimic::Arguments) -> Arguments {
        Arguments(args)
    }
}

impl Deref for Arguments {
    type Target = libtest_mimic::Arguments;
    fn deref(&self) -> &libtest_mimic::Arguments {
        &self.0
    }
}

impl DerefMut for Arguments {
    fn deref_mut(&mut self) -> &mut libtest_mimic::Arguments {
        &mut self.0
    }
}
