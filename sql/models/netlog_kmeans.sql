-- k-means over every feature window. Runs natively on BigQuery ML; the local engine trains it
-- with the same semantics.
CREATE OR REPLACE MODEL {{ this }}
OPTIONS (
  model_type = 'kmeans',
  num_clusters = {{ var("num_clusters") }},
  kmeans_init_method = 'KMEANS++',
  standardize_features = TRUE,
  max_iterations = 50
) AS
SELECT * EXCEPT (subscriberId, dst_subnet, window_start, window_end, labels)
FROM {{ ref("netlog_model_inputs") }}
