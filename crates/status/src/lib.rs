//! `status`: watching a run. A [`Board`] collects what a run tells — each generation's
//! figures from the run's observer, and for a distributed run its workers, phase times,
//! losses and recoveries as a [`uow::RunWatch`], and on Mesos the framework's offers,
//! agents and tasks — and shows it three ways: the live status page and its JSON
//! ([`serve`], axum on a thread and runtime of its own), Prometheus metrics at `/metrics`
//! (`prometheus-client`), and the convergence plot ([`plot::svg`], also what `--plot`
//! writes).
//!
//! **Boundary:** reads the run through `uow`'s watch trait, `ga-core`'s generation
//! figures and `scheduler`'s view of Mesos; it never drives a run, and a run never waits
//! on it (every call takes a short lock and returns).

mod board;
pub mod plot;
mod server;

pub use board::{Board, MAX_POINTS};
pub use plot::Point;
pub use server::{Server, StatusError, serve};
