{{ config(materialized='script') }}
{% set features = ["log_records", "log_unique_ips", "log_unique_ports", "log_unique_dst_ports",
                   "log_min_tx_bytes", "log_max_tx_bytes", "log_avg_tx_bytes",
                   "log_min_rx_bytes", "log_max_rx_bytes", "log_avg_rx_bytes",
                   "log_min_duration", "log_max_duration", "log_avg_duration",
                   "syn_only_share", "udp_share", "number_of_countries"] %}
-- The champion refit on the batch ops/drift_metrics measures (the windows it scored in the last
-- `drift_batch_minutes`, event time): three Lloyd iterations starting from the champion's
-- centroids (CUSTOM init), so ops/drift_metrics can measure how far each centroid moves when
-- today's traffic pulls on it. A scratch model, replaced by every drift run and never
-- registered (a script step, not a model step). num_clusters must be the champion's.
CREATE OR REPLACE MODEL {{ this }}
OPTIONS (
  model_type = 'kmeans',
  num_clusters = {{ var("num_clusters") }},
  kmeans_init_method = 'CUSTOM',
  kmeans_init_col = 'is_init',
  standardize_features = TRUE,
  max_iterations = 3,
  early_stop = FALSE
) AS
WITH champion_centroids AS (
  SELECT
    centroid_id,
    {% for f in features %}MAX(IF(feature = '{{ f }}', numerical_value, NULL)) AS {{ f }},
    {% endfor %}TRUE AS is_init
  FROM ML.CENTROIDS(MODEL {{ model("netlog_kmeans") }})
  GROUP BY centroid_id
)
SELECT * EXCEPT (centroid_id) FROM champion_centroids
UNION ALL
SELECT
  {% for f in features %}{{ f }},
  {% endfor %}FALSE AS is_init
FROM {{ ref("netlog_anomalies") }}
WHERE model_version = {{ model_version("netlog_kmeans") }}
  AND window_end > (
    SELECT TIMESTAMP_SUB(MAX(window_end), INTERVAL {{ var("drift_batch_minutes") }} MINUTE)
    FROM {{ ref("netlog_anomalies") }}
    WHERE model_version = {{ model_version("netlog_kmeans") }}
  )
