//! The current-thread tokio runtime an object owns ([`OwnedRuntime`]).

use std::ops::Deref;

/// A tokio runtime owned by a Python object (`WeatherService`,
/// `ResilientForecaster`), that can be dropped anywhere.
///
/// A Python object is freed wherever its last reference goes, which can be
/// inside another runtime's task: e.g. a `ResilientForecaster`'s primary
/// returning (or holding) another forecaster, whose answer is read and
/// dropped in the first one's task. Tokio panics when a runtime is dropped
/// there; this one is then shut down in the background instead (its
/// remaining tasks are dropped without waiting for blocking work).
#[derive(Debug)]
pub struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    /// A current-thread runtime with I/O and time enabled.
    pub fn current_thread() -> std::io::Result<Self> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| OwnedRuntime(Some(r)))
    }
}

impl Deref for OwnedRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &tokio::runtime::Runtime {
        match &self.0 {
            Some(runtime) => runtime,
            // Taken only by `drop`.
            None => unreachable!("the runtime is taken only when dropped"),
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}
