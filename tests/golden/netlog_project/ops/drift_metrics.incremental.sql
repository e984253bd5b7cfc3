CREATE OR REPLACE TABLE `acme-netlog.netlog_ops.drift_metrics__ns_stage_compile` AS
-- How far the newest batch (the windows the champion scored in the last `drift_batch_minutes`
-- of event time, up to the newest scored window) has drifted from the champion's training
-- windows, one row per metric:
--   score_shift          median normalized distance of the batch / its median on the training windows
--   anomaly_rate_excess  binomial z of the batch's anomaly rate against the contamination:
--                        (rate - c) / sqrt(c (1 - c) / n)
--   cluster_occupancy    L∞ distance between the clusters' shares of the training windows and
--                        of the batch (windows assigned as ML.DETECT_ANOMALIES assigns them)
--   centroid_shift       the largest distance a champion centroid moves when refit on the batch
--                        (models/netlog_kmeans_refit), in units of its radius, in the champion's
--                        standardized space; each centroid is matched with the nearest refit one
-- The built-in `drift` step writes `threshold` and `breached` for the policy's metric. A rerun
-- without a new batch measures the same batch again and replaces its rows.
WITH batch AS (
  SELECT window_start, window_end, is_anomaly, normalized_distance, centroid_id
  FROM `acme-netlog.netlog_inferenced.netlog_anomalies`
  WHERE model_version = 1
    AND window_end > (
      SELECT TIMESTAMP_SUB(MAX(window_end), INTERVAL 5 MINUTE)
      FROM `acme-netlog.netlog_inferenced.netlog_anomalies`
      WHERE model_version = 1
    )
),
-- The champion scored on the windows of its training range (training and holdout rows alike:
-- both are the traffic it was built for).
training AS (
  SELECT normalized_distance, centroid_id
  FROM ML.DETECT_ANOMALIES(
    MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`,
    STRUCT(0.01 AS contamination),
    (
      SELECT *
      FROM `acme-netlog.netlog_features.netlog_model_inputs`
      WHERE window_start >= (
          SELECT MIN(training_from) FROM `acme-netlog.netlog_ops.model_registry`
          WHERE model_name = 'netlog_kmeans' AND version = 1)
        AND window_end <= (
          SELECT MAX(training_to) FROM `acme-netlog.netlog_ops.model_registry`
          WHERE model_name = 'netlog_kmeans' AND version = 1)
    )
  )
),
batch_stats AS (
  SELECT
    COUNT(*) AS scored_rows,
    MIN(window_start) AS window_from,
    MAX(window_end) AS window_to,
    APPROX_QUANTILES(normalized_distance, 2)[OFFSET(1)] AS median_distance,
    SAFE_DIVIDE(COUNTIF(is_anomaly), COUNT(*)) AS anomaly_rate
  FROM batch
),
training_stats AS (
  SELECT
    COUNT(*) AS training_rows,
    APPROX_QUANTILES(normalized_distance, 2)[OFFSET(1)] AS median_distance
  FROM training
),
occupancy AS (
  SELECT
    MAX(ABS(SAFE_DIVIDE(c.batch_rows, b.scored_rows) - SAFE_DIVIDE(c.training_rows, t.training_rows))) AS linf
  FROM (
    SELECT centroid_id, COUNTIF(in_batch) AS batch_rows, COUNTIF(NOT in_batch) AS training_rows
    FROM (
      SELECT centroid_id, TRUE AS in_batch FROM batch
      UNION ALL
      SELECT centroid_id, FALSE AS in_batch FROM training
    )
    GROUP BY centroid_id
  ) AS c
  CROSS JOIN batch_stats AS b
  CROSS JOIN training_stats AS t
),
-- Centroids in the champion's standardized space: its own, and the refit's standardized with
-- the champion's training statistics.
champion_centroids AS (
  SELECT centroid_id, feature, numerical_value AS value
  FROM ML.CENTROIDS(MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`, STRUCT(TRUE AS standardize))
),
refit_centroids AS (
  SELECT r.centroid_id, r.feature, COALESCE(SAFE_DIVIDE(r.numerical_value - f.mean, f.stddev), 0) AS value
  FROM ML.CENTROIDS(MODEL `acme-netlog.netlog_models.netlog_kmeans_refit`) AS r
  JOIN ML.FEATURE_INFO(MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`) AS f ON f.input = r.feature
),
moves AS (
  SELECT centroid_id, MIN(distance) AS distance
  FROM (
    SELECT c.centroid_id, r.centroid_id AS refit_id, SQRT(SUM(POW(r.value - c.value, 2))) AS distance
    FROM champion_centroids AS c
    JOIN refit_centroids AS r ON r.feature = c.feature
    GROUP BY c.centroid_id, r.centroid_id
  )
  GROUP BY centroid_id
),
radii AS (
  SELECT ci.centroid_id, ci.cluster_radius
  FROM ML.TRAINING_INFO(MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`) AS info, UNNEST(info.cluster_info) AS ci
  WHERE info.iteration = (SELECT MAX(iteration) FROM ML.TRAINING_INFO(MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`))
),
centroid_shift AS (
  SELECT MAX(SAFE_DIVIDE(m.distance, r.cluster_radius)) AS shift
  FROM moves AS m
  JOIN radii AS r ON r.centroid_id = m.centroid_id
),
measured AS (
  SELECT 'score_shift' AS metric, SAFE_DIVIDE(b.median_distance, t.median_distance) AS value
  FROM batch_stats AS b CROSS JOIN training_stats AS t
  UNION ALL
  SELECT
    'anomaly_rate_excess' AS metric,
    SAFE_DIVIDE(
      b.anomaly_rate - 0.01,
      SQRT(SAFE_DIVIDE(0.01 * (1 - 0.01), b.scored_rows))
    ) AS value
  FROM batch_stats AS b
  UNION ALL
  SELECT 'cluster_occupancy' AS metric, linf AS value
  FROM occupancy
  UNION ALL
  SELECT 'centroid_shift' AS metric, shift AS value
  FROM centroid_shift
)
SELECT
  'netlog_kmeans' AS model_name,
  1 AS model_version,
  b.window_from,
  b.window_to,
  m.metric,
  m.value,
  b.scored_rows,
  t.training_rows,
  CAST(NULL AS FLOAT64) AS threshold,
  CAST(NULL AS BOOL) AS breached,
  CURRENT_TIMESTAMP() AS measured_at
FROM measured AS m
CROSS JOIN batch_stats AS b
CROSS JOIN training_stats AS t
WHERE b.scored_rows > 0;
DELETE FROM `acme-netlog.netlog_ops.drift_metrics` AS t WHERE EXISTS (SELECT 1 FROM `acme-netlog.netlog_ops.drift_metrics__ns_stage_compile` AS s WHERE s.model_name = t.model_name AND s.model_version = t.model_version AND s.window_from = t.window_from AND s.window_to = t.window_to AND s.metric = t.metric);
INSERT INTO `acme-netlog.netlog_ops.drift_metrics` SELECT * FROM `acme-netlog.netlog_ops.drift_metrics__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_ops.drift_metrics__ns_stage_compile`;
