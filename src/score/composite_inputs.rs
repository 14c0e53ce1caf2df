/// What the productivity score is computed from, read from the state backend
/// in one operation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CompositeInputs {
    /// Overall tool success rate S, %, from explicit outcomes; `None` without any.
    pub success_rate: Option<f64>,
    /// Acceptance rate A over the last 100 explicit decisions, %; `None` without any.
    pub acceptance_rate: Option<f64>,
    /// Tool runs counted so far.
    pub tool_runs: u64,
}
