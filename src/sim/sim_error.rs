use thiserror::Error;

use crate::error::{BackendError, ConfigError, Error};

/// Why a simulation could not run.
///
/// ```
/// use composite_metrics::sim::{LoadProfile, SimError};
///
/// let err = LoadProfile::parse("bad", "10s@fast").unwrap_err();
/// assert!(matches!(err, SimError::Profile { .. }));
/// assert!(err.to_string().contains("fast"));
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// A load profile is empty, or a phase has a negative or non-finite rate,
    /// or a profile description could not be parsed.
    #[error("invalid load profile: {reason}")]
    Profile {
        /// What is wrong with it.
        reason: String,
    },
    /// A simulator parameter is out of range.
    #[error("invalid simulator setting `{field}`: {reason}")]
    Setting {
        /// The parameter.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A scheduler configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A calculator could not be built.
    #[error("could not build a worker's calculator: {0}")]
    Build(#[source] Error),
    /// A backend could not be opened.
    #[error("could not open a backend: {0}")]
    Backend(#[from] BackendError),
    /// A command line (see [`CompareArgs`](super::CompareArgs)) has a bad
    /// or unknown flag.
    #[error("{reason}")]
    Usage {
        /// What is wrong, naming the flag.
        reason: String,
    },
    /// A real-time worker thread could not be started or panicked.
    #[error("real-time worker {worker} failed: {reason}")]
    Worker {
        /// The worker's index.
        worker: usize,
        /// What happened.
        reason: String,
    },
}
