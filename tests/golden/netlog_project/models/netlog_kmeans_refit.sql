-- The champion refit on the batch ops/drift_metrics measures (the windows it scored in the last
-- `drift_batch_minutes`, event time): three Lloyd iterations starting from the champion's
-- centroids (CUSTOM init), so ops/drift_metrics can measure how far each centroid moves when
-- today's traffic pulls on it. A scratch model, replaced by every drift run and never
-- registered (a script step, not a model step). num_clusters must be the champion's.
CREATE OR REPLACE MODEL `acme-netlog.netlog_models.netlog_kmeans_refit`
OPTIONS (
  model_type = 'kmeans',
  num_clusters = 4,
  kmeans_init_method = 'CUSTOM',
  kmeans_init_col = 'is_init',
  standardize_features = TRUE,
  max_iterations = 3,
  early_stop = FALSE
) AS
WITH champion_centroids AS (
  SELECT
    centroid_id,
    MAX(IF(feature = 'log_records', numerical_value, NULL)) AS log_records,
    MAX(IF(feature = 'log_unique_ips', numerical_value, NULL)) AS log_unique_ips,
    MAX(IF(feature = 'log_unique_ports', numerical_value, NULL)) AS log_unique_ports,
    MAX(IF(feature = 'log_unique_dst_ports', numerical_value, NULL)) AS log_unique_dst_ports,
    MAX(IF(feature = 'log_min_tx_bytes', numerical_value, NULL)) AS log_min_tx_bytes,
    MAX(IF(feature = 'log_max_tx_bytes', numerical_value, NULL)) AS log_max_tx_bytes,
    MAX(IF(feature = 'log_avg_tx_bytes', numerical_value, NULL)) AS log_avg_tx_bytes,
    MAX(IF(feature = 'log_min_rx_bytes', numerical_value, NULL)) AS log_min_rx_bytes,
    MAX(IF(feature = 'log_max_rx_bytes', numerical_value, NULL)) AS log_max_rx_bytes,
    MAX(IF(feature = 'log_avg_rx_bytes', numerical_value, NULL)) AS log_avg_rx_bytes,
    MAX(IF(feature = 'log_min_duration', numerical_value, NULL)) AS log_min_duration,
    MAX(IF(feature = 'log_max_duration', numerical_value, NULL)) AS log_max_duration,
    MAX(IF(feature = 'log_avg_duration', numerical_value, NULL)) AS log_avg_duration,
    MAX(IF(feature = 'syn_only_share', numerical_value, NULL)) AS syn_only_share,
    MAX(IF(feature = 'udp_share', numerical_value, NULL)) AS udp_share,
    MAX(IF(feature = 'number_of_countries', numerical_value, NULL)) AS number_of_countries,
    TRUE AS is_init
  FROM ML.CENTROIDS(MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`)
  GROUP BY centroid_id
)
SELECT * EXCEPT (centroid_id) FROM champion_centroids
UNION ALL
SELECT
  log_records,
  log_unique_ips,
  log_unique_ports,
  log_unique_dst_ports,
  log_min_tx_bytes,
  log_max_tx_bytes,
  log_avg_tx_bytes,
  log_min_rx_bytes,
  log_max_rx_bytes,
  log_avg_rx_bytes,
  log_min_duration,
  log_max_duration,
  log_avg_duration,
  syn_only_share,
  udp_share,
  number_of_countries,
  FALSE AS is_init
FROM `acme-netlog.netlog_inferenced.netlog_anomalies`
WHERE model_version = 1
  AND window_end > (
    SELECT TIMESTAMP_SUB(MAX(window_end), INTERVAL 5 MINUTE)
    FROM `acme-netlog.netlog_inferenced.netlog_anomalies`
    WHERE model_version = 1
  );
