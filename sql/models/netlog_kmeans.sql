-- k-means over the training windows (netlog_training_set without its holdout). Runs natively on
-- BigQuery ML; the local engine trains it with the same semantics. The default RANDOM
-- initialization starts from typical windows; KMEANS++ seeds far-away points, which hands a
-- burst of similar attacks (a port-scan wave) a cluster of its own, and their normalized
-- distances then look normal. Each run builds a new version (netlog_kmeans_v<N>); it becomes
-- the champion that model("netlog_kmeans") reads only if it passes the promotion gate.
CREATE OR REPLACE MODEL {{ this }}
OPTIONS (
  model_type = 'kmeans',
  num_clusters = {{ var("num_clusters") }},
  standardize_features = TRUE,
  max_iterations = 50
) AS
SELECT * EXCEPT (subscriberId, dst_subnet, window_start, window_end, ingested_through, labels, baseline_scope, entity_deviation,
  deviation_number_of_records, deviation_number_of_unique_ips, deviation_number_of_unique_dst_ports,
  deviation_max_tx_bytes, deviation_max_rx_bytes, holdout)
FROM {{ ref("netlog_training_set") }}
WHERE NOT holdout
