//! One module per subcommand: each turns its arguments into calls on the library and prints
//! the outcome.

pub mod compile;
pub mod demo;
pub mod env;
pub mod eval;
pub mod generate;
pub mod ingest;
pub mod models;
pub mod query;
pub mod run;
pub mod schedule;
pub mod test;
