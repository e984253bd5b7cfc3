//! netsentinel: a SQL-first orchestrator around BigQuery ML for anomaly detection in network
//! logs, with an embedded DuckDB engine that runs the same project locally.
//!
//! A project is `pipelines.yaml` plus Tera-templated GoogleSQL under `sql/` (`project`,
//! `config`, `render`, `dag`); `runner` executes pipelines on any `engine::Warehouse`, recording
//! `state`; `registry` versions and gates the watched model and `drift` decides when to retrain it;
//! `ingest` loads netlog, `generate` makes labelled mock netlog; `googlesql` and `bqml`
//! let the embedded engine run GoogleSQL and BigQuery ML.

pub mod alerts;
pub mod bqml;
pub mod compile;
pub mod config;
pub mod dag;
pub mod demo;
pub mod deploy;
pub mod drift;
pub mod engine;
pub mod event;
pub mod generate;
pub mod googlesql;
pub mod ingest;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod project;
pub mod pubsub;
pub mod registry;
pub mod relation;
pub mod render;
pub mod runner;
pub mod schedule;
pub mod service;
pub mod sqltest;
pub mod state;
pub mod vars;
