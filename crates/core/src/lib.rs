//! The bottom layer of netsentinel, shared by every engine and the application: names of things
//! in a warehouse (`relation`, `naming`), SQL literals (`sql`), the `Warehouse` trait with its
//! result cells and errors (`warehouse`), table definitions for generic table operations
//! (`table`), the netlog event (`event`), event times as exports write them (`timestamp`), the
//! step DAG (`dag`) and retry pauses (`backoff`). It knows no engine.

pub mod backoff;
pub mod dag;
pub mod event;
pub mod naming;
pub mod relation;
pub mod sql;
pub mod table;
pub mod timestamp;
pub mod warehouse;

pub use backoff::Backoff;
pub use naming::Naming;
pub use relation::{Dataset, Identifier, NameError, TableRef};
pub use table::{Column, ColumnType, InsertOutcome, RefusedRow, TableDef};
pub use timestamp::{TimestampError, from_epoch_number, parse_event_time};
pub use warehouse::{Cell, DryRun, EngineError, JobContext, ResultSet, ScriptOutcome, Warehouse};
