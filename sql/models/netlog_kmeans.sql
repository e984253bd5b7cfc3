-- k-means over every feature window. Runs natively on BigQuery ML; the local engine trains it
-- with the same semantics. The default RANDOM initialization starts from typical windows;
-- KMEANS++ seeds far-away points, which hands a burst of similar attacks (a port-scan wave) a
-- cluster of its own, and their normalized distances then look normal.
CREATE OR REPLACE MODEL {{ this }}
OPTIONS (
  model_type = 'kmeans',
  num_clusters = {{ var("num_clusters") }},
  standardize_features = TRUE,
  max_iterations = 50
) AS
SELECT * EXCEPT (subscriberId, dst_subnet, window_start, window_end, labels)
FROM {{ ref("netlog_model_inputs") }}
