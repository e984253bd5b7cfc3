# The environment the `bigquery` target of pipelines.yaml runs in. The names and layouts netsentinel
# relies on are spelled once, in the locals below, and tests/it/terraform.rs fails when they drift from
# pipelines.yaml, the SQL steps' config() or the tables netsentinel creates.

locals {
  # The target of pipelines.yaml the runner uses.
  netsentinel_target = "bigquery"

  # Logical dataset => BigQuery dataset: targets.bigquery.datasets in pipelines.yaml.
  datasets = {
    raw        = "netlog_raw"
    features   = "netlog_features"
    models     = "netlog_models"
    inferenced = "netlog_inferenced"
    ops        = "netlog_ops"
  }

  # Partitions older than this expire; datasets without an entry keep everything (models and the
  # run history are small, and the alert outbox is what stops an alert from being sent twice).
  partition_expiration_days = {
    raw        = var.raw_retention_days
    features   = var.derived_retention_days
    inferenced = var.derived_retention_days
  }

  # Every scheduled pipeline of pipelines.yaml, with its cron (UTC, as netsentinel reads it) and
  # the longest one run may take. A detect or drift run ends before the next one of its kind
  # starts, so two never write the same tables at once.
  pipelines = {
    train = {
      schedule = "0 3 * * *"
      timeout  = "3600s"
    }
    detect = {
      schedule = "*/5 * * * *"
      timeout  = "280s"
    }
    drift = {
      schedule = "*/5 * * * *"
      timeout  = "280s"
    }
  }

  # Pub/Sub names. The alerts topic is the pubsub sink of pipelines.yaml
  # (projects/${GCP_PROJECT}/topics/netlog-alerts); the ingest topic feeds raw.netlog_events
  # through the runner's subscription, and messages it cannot take go to the dead-letter topic.
  pubsub = {
    alerts_topic              = "netlog-alerts"
    alerts_subscription       = "netlog-alerts-consumer"
    ingest_topic              = "netlog-ingest"
    ingest_subscription       = "netlog-ingest-netsentinel"
    ingest_dead_letter_topic  = "netlog-ingest-dead-letter"
    ingest_dead_letter_holder = "netlog-ingest-dead-letter-hold"
  }

  # Tables terraform owns, so their partitioning, clustering and retention are set before the
  # first run. netsentinel creates them with CREATE TABLE IF NOT EXISTS (raw, ops) or treats an
  # existing table as incremental (inferenced), so columns must match what it writes, in order.
  # The features tables are left to netsentinel: they are rebuilt from raw when their SQL changes.
  tables = {
    "raw.netlog_events" = {
      dataset         = "raw"
      name            = "netlog_events"
      description     = "One row per network flow, loaded by netsentinel ingest."
      partition_field = "startTime"
      clustering      = ["subscriberId"]
      columns = [
        ["event_id", "STRING"],
        ["subscriberId", "STRING"],
        ["srcIP", "STRING"],
        ["dstIP", "STRING"],
        ["srcPort", "INT64"],
        ["dstPort", "INT64"],
        ["txBytes", "INT64"],
        ["rxBytes", "INT64"],
        ["tcpFlag", "INT64"],
        ["startTime", "TIMESTAMP"],
        ["endTime", "TIMESTAMP"],
        ["timestamp", "TIMESTAMP"],
        ["protocolName", "STRING"],
        ["protocolNumber", "INT64"],
        ["geoCountry", "STRING"],
        ["geoCity", "STRING"],
        ["latitude", "FLOAT64"],
        ["longitude", "FLOAT64"],
        ["label", "STRING"],
        ["source", "STRING"],
        ["source_line", "INT64"],
        ["ingested_at", "TIMESTAMP"],
      ]
    }
    "raw.netlog_rejects" = {
      dataset         = "raw"
      name            = "netlog_rejects"
      description     = "Rows ingest could not accept, with file, line, field and reason."
      partition_field = null
      clustering      = []
      columns = [
        ["reject_id", "STRING"],
        ["source", "STRING"],
        ["line", "INT64"],
        ["field", "STRING"],
        ["reason", "STRING"],
        ["raw", "STRING"],
        ["rejected_at", "TIMESTAMP"],
      ]
    }
    "inferenced.netlog_anomalies" = {
      dataset         = "inferenced"
      name            = "netlog_anomalies"
      description     = "Feature windows scored by ML.DETECT_ANOMALIES (sql/inferenced/netlog_anomalies.sql)."
      partition_field = "window_start"
      clustering      = ["subscriberId", "dst_subnet"]
      columns = [
        ["subscriberId", "STRING"],
        ["dst_subnet", "STRING"],
        ["window_start", "TIMESTAMP"],
        ["window_end", "TIMESTAMP"],
        ["is_anomaly", "BOOL"],
        ["is_alert", "BOOL"],
        ["recurring", "BOOL"],
        ["normalized_distance", "FLOAT64"],
        ["centroid_id", "INT64"],
        ["ingested_through", "TIMESTAMP"],
        ["labels", "STRING"],
        ["baseline_scope", "STRING"],
        ["entity_deviation", "FLOAT64"],
        ["log_records", "FLOAT64"],
        ["log_unique_ips", "FLOAT64"],
        ["log_unique_ports", "FLOAT64"],
        ["log_unique_dst_ports", "FLOAT64"],
        ["log_min_tx_bytes", "FLOAT64"],
        ["log_max_tx_bytes", "FLOAT64"],
        ["log_avg_tx_bytes", "FLOAT64"],
        ["log_min_rx_bytes", "FLOAT64"],
        ["log_max_rx_bytes", "FLOAT64"],
        ["log_avg_rx_bytes", "FLOAT64"],
        ["log_min_duration", "FLOAT64"],
        ["log_max_duration", "FLOAT64"],
        ["log_avg_duration", "FLOAT64"],
        ["syn_only_share", "FLOAT64"],
        ["udp_share", "FLOAT64"],
        ["number_of_countries", "INT64"],
        ["deviation_number_of_records", "FLOAT64"],
        ["deviation_number_of_unique_ips", "FLOAT64"],
        ["deviation_number_of_unique_dst_ports", "FLOAT64"],
        ["deviation_max_tx_bytes", "FLOAT64"],
        ["deviation_max_rx_bytes", "FLOAT64"],
        ["model_version", "INT64"],
        ["scored_at", "TIMESTAMP"],
      ]
    }
    "inferenced.netlog_beacons" = {
      dataset         = "inferenced"
      name            = "netlog_beacons"
      description     = "Beaconing per subscriber and destination, one row per pair (sql/inferenced/netlog_beacons.sql)."
      partition_field = null
      clustering      = ["subscriberId"]
      columns = [
        ["subscriberId", "STRING"],
        ["destination", "STRING"],
        ["first_seen", "TIMESTAMP"],
        ["last_seen", "TIMESTAMP"],
        ["connections", "INT64"],
        ["median_gap_seconds", "FLOAT64"],
        ["timing_regularity", "FLOAT64"],
        ["size_regularity", "FLOAT64"],
        ["span_coverage", "FLOAT64"],
        ["peers", "INT64"],
        ["score", "FLOAT64"],
        ["is_finding", "BOOL"],
        ["evidence", "STRING"],
        ["ingested_through", "TIMESTAMP"],
      ]
    }
    "inferenced.netlog_slow_scans" = {
      dataset         = "inferenced"
      name            = "netlog_slow_scans"
      description     = "Slow port scans per subscriber and destination, one row per pair (sql/inferenced/netlog_slow_scans.sql)."
      partition_field = null
      clustering      = ["subscriberId"]
      columns = [
        ["subscriberId", "STRING"],
        ["destination", "STRING"],
        ["first_seen", "TIMESTAMP"],
        ["last_seen", "TIMESTAMP"],
        ["connections", "INT64"],
        ["distinct_ports", "INT64"],
        ["max_ports_per_minute", "INT64"],
        ["syn_only_share", "FLOAT64"],
        ["peers", "INT64"],
        ["score", "FLOAT64"],
        ["is_finding", "BOOL"],
        ["evidence", "STRING"],
        ["ingested_through", "TIMESTAMP"],
      ]
    }
    "inferenced.netlog_long_connections" = {
      dataset         = "inferenced"
      name            = "netlog_long_connections"
      description     = "Long-lived connections per subscriber and destination, one row per pair (sql/inferenced/netlog_long_connections.sql)."
      partition_field = null
      clustering      = ["subscriberId"]
      columns = [
        ["subscriberId", "STRING"],
        ["destination", "STRING"],
        ["first_seen", "TIMESTAMP"],
        ["last_seen", "TIMESTAMP"],
        ["dstPort", "INT64"],
        ["protocolNumber", "INT64"],
        ["records", "INT64"],
        ["duration_minutes", "FLOAT64"],
        ["tx_bytes", "INT64"],
        ["rx_bytes", "INT64"],
        ["peers", "INT64"],
        ["score", "FLOAT64"],
        ["is_finding", "BOOL"],
        ["evidence", "STRING"],
        ["ingested_through", "TIMESTAMP"],
      ]
    }
    "ops.ingest_batches" = {
      dataset         = "ops"
      name            = "ingest_batches"
      description     = "One row per ingested batch: when and which flow starts; incremental steps find new events with it (src/ingest/schema.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["batch_id", "STRING"],
        ["ingested_at", "TIMESTAMP"],
        ["first_start", "TIMESTAMP"],
        ["last_start", "TIMESTAMP"],
        ["events", "INT64"],
      ]
    }
    "ops.runs" = {
      dataset         = "ops"
      name            = "runs"
      description     = "One row per pipeline run (src/state.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["run_id", "STRING"],
        ["pipeline", "STRING"],
        ["target", "STRING"],
        ["status", "STRING"],
        ["started_at", "TIMESTAMP"],
        ["finished_at", "TIMESTAMP"],
        ["error", "STRING"],
      ]
    }
    "ops.step_runs" = {
      dataset         = "ops"
      name            = "step_runs"
      description     = "One row per step of a run (src/state.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["run_id", "STRING"],
        ["step", "STRING"],
        ["status", "STRING"],
        ["started_at", "TIMESTAMP"],
        ["finished_at", "TIMESTAMP"],
        ["duration_ms", "INT64"],
        ["rows_affected", "INT64"],
        ["error", "STRING"],
        ["bytes_processed", "INT64"],
        ["bytes_billed", "INT64"],
      ]
    }
    "ops.run_leases" = {
      dataset         = "ops"
      name            = "run_leases"
      description     = "One run of a pipeline at a time: the holder of each pipeline's lease and its last heartbeat (src/run_lease.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["pipeline", "STRING"],
        ["holder", "STRING"],
        ["host", "STRING"],
        ["pid", "INT64"],
        ["acquired_at", "TIMESTAMP"],
        ["heartbeat_at", "TIMESTAMP"],
      ]
    }
    "ops.model_registry" = {
      dataset         = "ops"
      name            = "model_registry"
      description     = "Versions of every trained model and the champion (src/state.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["model_name", "STRING"],
        ["version", "INT64"],
        ["relation", "STRING"],
        ["run_id", "STRING"],
        ["trained_at", "TIMESTAMP"],
        ["status", "STRING"],
        ["training_rows", "INT64"],
        ["holdout_rows", "INT64"],
        ["training_from", "TIMESTAMP"],
        ["training_to", "TIMESTAMP"],
        ["davies_bouldin_index", "FLOAT64"],
        ["mean_squared_distance", "FLOAT64"],
        ["compared_with", "INT64"],
        ["champion_davies_bouldin_index", "FLOAT64"],
        ["reason", "STRING"],
        ["status_changed_at", "TIMESTAMP"],
      ]
    }
    "ops.drift_metrics" = {
      dataset         = "ops"
      name            = "drift_metrics"
      description     = "Drift of each scored batch from the champion's training data (sql/ops/drift_metrics.sql)."
      partition_field = null
      clustering      = []
      columns = [
        ["model_name", "STRING"],
        ["model_version", "INT64"],
        ["window_from", "TIMESTAMP"],
        ["window_to", "TIMESTAMP"],
        ["metric", "STRING"],
        ["value", "FLOAT64"],
        ["scored_rows", "INT64"],
        ["training_rows", "INT64"],
        ["threshold", "FLOAT64"],
        ["breached", "BOOL"],
        ["measured_at", "TIMESTAMP"],
      ]
    }
    "ops.drift_decisions" = {
      dataset         = "ops"
      name            = "drift_decisions"
      description     = "Every decision of the drift policy, with its numbers and the retrain's outcome (src/drift/mod.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["run_id", "STRING"],
        ["decided_at", "TIMESTAMP"],
        ["model_name", "STRING"],
        ["model_version", "INT64"],
        ["metric", "STRING"],
        ["value", "FLOAT64"],
        ["threshold", "FLOAT64"],
        ["streak", "INT64"],
        ["consecutive", "INT64"],
        ["scored_rows", "INT64"],
        ["window_from", "TIMESTAMP"],
        ["window_to", "TIMESTAMP"],
        ["action", "STRING"],
        ["reason", "STRING"],
        ["cooldown_until", "TIMESTAMP"],
        ["then_pipeline", "STRING"],
        ["train_run_id", "STRING"],
        ["outcome", "STRING"],
      ]
    }
    "ops.alert_outbox" = {
      dataset         = "ops"
      name            = "alert_outbox"
      description     = "Every alert once, sent, suppressed or held (src/alerts/outbox.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["alert_id", "STRING"],
        ["kind", "STRING"],
        ["status", "STRING"],
        ["reason", "STRING"],
        ["run_id", "STRING"],
        ["pipeline", "STRING"],
        ["model_version", "INT64"],
        ["subscriber", "STRING"],
        ["subnet", "STRING"],
        ["window_start", "TIMESTAMP"],
        ["window_end", "TIMESTAMP"],
        ["severity", "STRING"],
        ["normalized_distance", "FLOAT64"],
        ["payload", "STRING"],
        ["created_at", "TIMESTAMP"],
      ]
    }
    "ops.alert_deliveries" = {
      dataset         = "ops"
      name            = "alert_deliveries"
      description     = "Delivery state of each alert at each sink (src/alerts/outbox.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["alert_id", "STRING"],
        ["sink", "STRING"],
        ["status", "STRING"],
        ["attempts", "INT64"],
        ["message_id", "STRING"],
        ["last_error", "STRING"],
        ["delivered_at", "TIMESTAMP"],
        ["updated_at", "TIMESTAMP"],
      ]
    }
    "ops.alert_delivery_log" = {
      dataset         = "ops"
      name            = "alert_delivery_log"
      description     = "Every delivery attempt of every alert, with its outcome (src/alerts/outbox.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["attempt_id", "STRING"],
        ["alert_id", "STRING"],
        ["sink", "STRING"],
        ["outcome", "STRING"],
        ["message_id", "STRING"],
        ["error", "STRING"],
        ["attempted_at", "TIMESTAMP"],
      ]
    }
    "ops.assertion_results" = {
      dataset         = "ops"
      name            = "assertion_results"
      description     = "Results of the steps' assertions (src/sqltest/assertions.rs)."
      partition_field = null
      clustering      = []
      columns = [
        ["run_id", "STRING"],
        ["step", "STRING"],
        ["assertion", "STRING"],
        ["location", "STRING"],
        ["severity", "STRING"],
        ["status", "STRING"],
        ["failing_rows", "INT64"],
        ["sample", "STRING"],
        ["checked_at", "TIMESTAMP"],
      ]
    }
  }

  # Environment of the runner: every ${VAR} pipelines.yaml references for the target. The same
  # map is the `netsentinel_env` output that `netsentinel env --from-terraform` turns into exports.
  netsentinel_env = {
    GCP_PROJECT = var.project_id
  }

  labels = {
    app         = "netsentinel"
    environment = var.environment
    managed-by  = "terraform"
  }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "required" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
  ])
  project = var.project_id
  service = each.value
  # Other workloads in the project may use these APIs; destroying this environment leaves them on.
  disable_on_destroy = false
}
