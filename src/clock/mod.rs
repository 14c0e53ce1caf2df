//! Time sources: the [`Clock`] trait, the real [`SystemClock`] and the
//! virtual [`ManualClock`] that tests, benches, examples and the simulator use.

// A file holds the type it is named after, here as elsewhere.
#[allow(clippy::module_inception)]
mod clock;
mod manual_clock;
mod system_clock;
mod wake;

pub use self::clock::Clock;
pub use self::manual_clock::ManualClock;
pub use self::system_clock::SystemClock;
pub use self::wake::Wake;
