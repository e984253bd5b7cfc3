//! Local k-means benchmark (issue 3), run by `scripts/bench_kmeans.sh`, which also runs the
//! scikit-learn side on the same file:
//!
//! 1. training: `kmeans::train` on the matrix in `DIR/x.f64` (row-major f64, `--rows` ×
//!    `--dims`), k = `--k`, the first k rows as CUSTOM initial centroids, 20 iterations, no early
//!    stop, no standardization, so scikit-learn's Lloyd starts from the same place in the same
//!    space; the centroids go to `DIR/centroids.f64` for the script to compare;
//! 2. CREATE MODEL through the embedded warehouse on the same rows (from reading the training
//!    query's result to the stored model), with the peak of Rust heap bytes live above what was
//!    live before, counted by this binary's global allocator;
//! 3. ML.DETECT_ANOMALIES of every row into a table, against DuckDB copying the same table.
//!
//! Prints `key=value` lines. Usage: `cargo bench --bench kmeans -- DIR ROWS DIMS K`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use netsentinel_bqml::kmeans::{self, DistanceType, InitMethod, InputColumn, KMeansOptions};
use netsentinel_core::{Cell, Warehouse};
use netsentinel_duckdb::DuckDbWarehouse;

/// Counts live heap bytes and their high-water mark. A `realloc` counts as freeing the old size
/// and allocating the new one at once, so a copy the system allocator makes while growing is not
/// seen; the engine sizes its large buffers up front, where this matters.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn read_matrix(path: &Path, rows: usize, dims: usize) -> Vec<f64> {
    let bytes = std::fs::read(path).expect("read the data file");
    assert_eq!(bytes.len(), rows * dims * 8, "{} size", path.display());
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

fn column_name(j: usize) -> String {
    format!("f{j}")
}

/// The training rows as a DuckDB table `features.bench` (f0.., seed), seed TRUE on the first k.
fn load_table(path: &Path, x: &[f64], dims: usize, k: usize) {
    let conn = duckdb::Connection::open(path).expect("open bench database");
    let cols: Vec<String> = (0..dims)
        .map(|j| format!("{} DOUBLE", column_name(j)))
        .collect();
    conn.execute_batch(&format!(
        "CREATE SCHEMA IF NOT EXISTS features; CREATE TABLE features.bench ({}, seed BOOLEAN);",
        cols.join(", ")
    ))
    .expect("create table");
    let mut appender = conn.appender_to_db("bench", "features").expect("appender");
    for (i, row) in x.chunks_exact(dims).enumerate() {
        let mut values: Vec<duckdb::types::Value> = row
            .iter()
            .map(|&v| duckdb::types::Value::Double(v))
            .collect();
        values.push(duckdb::types::Value::Boolean(i < k));
        appender
            .append_row(duckdb::appender_params_from_iter(values))
            .expect("append");
    }
    appender.flush().expect("flush");
}

fn seconds(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [dir, rows, dims, k] = args.as_slice() else {
        panic!("usage: kmeans DIR ROWS DIMS K");
    };
    let dir = Path::new(dir);
    let rows: usize = rows.parse().expect("ROWS");
    let dims: usize = dims.parse().expect("DIMS");
    let k: usize = k.parse().expect("K");
    let x = read_matrix(&dir.join("x.f64"), rows, dims);

    // 1. Training on the in-memory matrix.
    let columns: Vec<InputColumn> = (0..dims)
        .map(|j| {
            InputColumn::numeric(
                column_name(j),
                x.iter().skip(j).step_by(dims).map(|&v| Some(v)).collect(),
            )
        })
        .collect();
    let options = KMeansOptions {
        num_clusters: Some(k),
        init: InitMethod::Custom {
            selected_rows: (0..rows).map(|i| i < k).collect(),
        },
        distance: DistanceType::Euclidean,
        standardize_features: false,
        max_iterations: 20,
        early_stop: false,
        ..KMeansOptions::default()
    };
    let started = Instant::now();
    let model = kmeans::train(&columns, &options).expect("train");
    let train_s = seconds(started);
    drop(columns);
    println!("train_seconds={train_s:.4}");
    println!("train_iterations={}", model.iterations.len());
    println!(
        "train_loss={}",
        model.iterations.last().map_or(f64::NAN, |i| i.loss)
    );
    let flat: Vec<u8> = model
        .centroids
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(dir.join("centroids.f64"), flat).expect("write centroids");

    // 2. CREATE MODEL through the warehouse.
    let db = dir.join("bench.duckdb");
    let _ = std::fs::remove_file(&db);
    load_table(&db, &x, dims, k);
    drop(x);
    let mut wh = DuckDbWarehouse::open(&db).expect("open warehouse");
    let features: Vec<String> = (0..dims).map(column_name).collect();
    let create = format!(
        "CREATE MODEL models.bench OPTIONS(model_type='kmeans', num_clusters={k}, kmeans_init_method='CUSTOM', \
         kmeans_init_col='seed', standardize_features=FALSE, max_iterations=20, early_stop=FALSE) \
         AS SELECT {}, seed FROM features.bench",
        features.join(", ")
    );
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = Instant::now();
    wh.execute_script(&create).expect("CREATE MODEL");
    let create_s = seconds(started);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    println!("create_model_seconds={create_s:.4}");
    println!("create_model_peak_heap_bytes={peak}");
    println!("feature_matrix_bytes={}", rows * dims * 8);

    // 3. Scoring every row: aggregated (the scoring alone) and into a table (what a pipeline
    // step does), each against DuckDB doing the same without scoring.
    let detect = "ML.DETECT_ANOMALIES(MODEL models.bench, STRUCT(0.01 AS contamination), TABLE features.bench)";
    let sums: Vec<String> = features.iter().map(|f| format!("SUM({f})")).collect();
    let timed = |wh: &mut DuckDbWarehouse, sql: &str| {
        let started = Instant::now();
        let result = wh.query(sql).expect(sql);
        (seconds(started), result)
    };
    let (detect_s, result) = timed(
        &mut wh,
        &format!(
            "SELECT COUNTIF(is_anomaly), COUNT(*), SUM(normalized_distance), SUM(centroid_id) FROM {detect}"
        ),
    );
    let [Cell::Int(anomalies), Cell::Int(scored), ..] = result.rows[0].as_slice() else {
        panic!("unexpected {:?}", result.rows);
    };
    assert_eq!(*scored as usize, rows);
    println!("detect_aggregate_seconds={detect_s:.4}");
    println!("detect_anomalies={anomalies}");
    let (scan_s, _) = timed(
        &mut wh,
        &format!("SELECT COUNT(*), {} FROM features.bench", sums.join(", ")),
    );
    println!("duckdb_aggregate_seconds={scan_s:.4}");
    let started = Instant::now();
    wh.execute_script(&format!(
        "CREATE TABLE features.scored AS SELECT * FROM {detect}"
    ))
    .expect("detect into a table");
    println!("detect_table_seconds={:.4}", seconds(started));
    let started = Instant::now();
    wh.execute_script("CREATE TABLE features.copied AS SELECT * FROM features.bench")
        .expect("copy");
    println!("duckdb_copy_seconds={:.4}", seconds(started));
}
