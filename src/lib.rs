//! netsentinel, the application: a SQL-first orchestrator around BigQuery ML for anomaly
//! detection in network logs, on any engine behind `netsentinel_core::Warehouse`.
//!
//! A project is `pipelines.yaml` plus Tera-templated GoogleSQL under `sql/` (`config`,
//! `project`, `render`); `runner` executes pipelines on whichever warehouse it is handed,
//! recording `state`, one run per pipeline at a time (`run_lease`, kept alive by a
//! `heartbeat`); `registry` versions and gates the watched model and `drift` decides when
//! to retrain it; `ingest` loads netlog into the raw tables it declares; `alerts` delivers
//! anomalies; `sqltest` checks the SQL; `schedule` and `service` keep it running. The engines
//! (`netsentinel_duckdb`, `netsentinel_bigquery`) are opened from a target in `config` alone.

pub mod alerts;
pub mod compile;
pub mod config;
pub mod config_values;
pub mod demo;
pub mod deploy;
pub mod drift;
pub mod eval;
pub mod heartbeat;
pub mod ingest;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod project;
pub mod pubsub;
pub mod registry;
pub mod render;
pub mod run_lease;
pub mod runner;
pub mod schedule;
pub mod service;
pub mod sqltest;
pub mod state;
pub mod vars;
