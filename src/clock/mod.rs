//! Time sources: the [`Clock`] trait, the real [`SystemClock`] and the
//! virtual [`ManualClock`] that tests, benches, examples and the simulator use.

mod clock_trait;
mod manual;
mod system;
mod wake;

pub use self::clock_trait::Clock;
pub use self::manual::ManualClock;
pub use self::system::SystemClock;
pub use self::wake::Wake;
