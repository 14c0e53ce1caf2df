//! When to recompute the composite: the [`CompositeScheduler`] trait and the
//! strategies of the design note, one per file.

mod background;
mod background_config;
mod coalesce;
mod coalesce_config;
mod composite_scheduler;
mod composite_scope;
mod decision;
mod event_based;
mod event_context;
mod hybrid_lock;
mod hybrid_lock_config;
mod never;
mod scheduler_env;
mod scheduler_stats;
mod session_table;
mod time_based;

pub use self::background::Background;
pub use self::background_config::BackgroundConfig;
pub use self::coalesce::Coalesce;
pub use self::coalesce_config::CoalesceConfig;
pub use self::composite_scheduler::CompositeScheduler;
pub use self::composite_scope::CompositeScope;
pub use self::decision::{Decision, Ticket};
pub use self::event_based::EventBased;
pub use self::event_context::EventContext;
pub use self::hybrid_lock::HybridLock;
pub use self::hybrid_lock_config::HybridLockConfig;
pub use self::never::Never;
pub use self::scheduler_env::SchedulerEnv;
pub use self::scheduler_stats::SchedulerStats;
pub use self::time_based::TimeBased;
