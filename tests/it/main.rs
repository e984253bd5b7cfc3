//! The integration tests of the netsentinel application, in one binary so that an edit links
//! DuckDB once: each module is one area, driving the `netsentinel` binary or the library
//! against real engines and emulators (helpers in `common`).

mod alerts;
mod alerts_pubsub;
mod bigquery_emulator;
mod bigquery_overlap;
mod common;
mod compile;
mod docs_links;
mod drift;
mod eval;
mod event_time;
mod follow;
mod follow_faults;
mod follow_http_abuse;
mod golden;
mod idempotency;
mod ingest;
mod ingest_formats;
mod pipeline;
mod project_errors;
mod schedule;
mod sql_tests;
mod terraform;
