//! Integration tests of the embedded engine, in one binary: GoogleSQL translated and run on
//! DuckDB, and BigQuery ML (CREATE MODEL, the ML.* functions) checked against BigQuery's
//! documented semantics and a scikit-learn reference.

mod bqml_conformance;
mod bqml_functions;
mod bqml_local;
mod bqml_scoring_exact;
mod googlesql;
