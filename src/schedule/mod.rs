//! When to recompute the composite: the [`CompositeScheduler`] trait and the
//! strategies of the design note, one per file.

mod background;
mod coalesce;
mod coalesce_config;
mod context;
mod decision;
mod env;
mod event_based;
mod hybrid_lock;
mod hybrid_lock_config;
mod never;
mod scheduler;
mod scope;
mod session_table;
mod stats;
mod time_based;

pub use self::background::{Background, BackgroundConfig};
pub use self::coalesce::Coalesce;
pub use self::coalesce_config::CoalesceConfig;
pub use self::context::EventContext;
pub use self::decision::{Decision, Ticket};
pub use self::env::SchedulerEnv;
pub use self::event_based::EventBased;
pub use self::hybrid_lock::HybridLock;
pub use self::hybrid_lock_config::HybridLockConfig;
pub use self::never::Never;
pub use self::scheduler::CompositeScheduler;
pub use self::scope::CompositeScope;
pub use self::stats::SchedulerStats;
pub use self::time_based::TimeBased;
