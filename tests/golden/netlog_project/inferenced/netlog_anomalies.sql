CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_anomalies`
PARTITION BY DATE(window_start)
CLUSTER BY subscriberId, dst_subnet AS
-- Scores the closed feature windows not scored yet, and re-scores a window that gained events
-- since it was scored (ingested_through moved), with the current model. A window closes once
-- its end plus the allowed lateness has passed; a late batch's windows are closed at once.
-- is_anomaly follows ML.DETECT_ANOMALIES: normalized distance above the training distances'
-- (1 - contamination) quantile. The alerts step alerts a window once, however often it is
-- re-scored.
SELECT
  subscriberId,
  dst_subnet,
  window_start,
  window_end,
  is_anomaly,
  normalized_distance,
  centroid_id,
  * EXCEPT (subscriberId, dst_subnet, window_start, window_end, is_anomaly, normalized_distance, centroid_id),
  1 AS model_version,
  CURRENT_TIMESTAMP() AS scored_at
FROM ML.DETECT_ANOMALIES(
  MODEL `acme-netlog.netlog_models.netlog_kmeans_v1`,
  STRUCT(0.01 AS contamination),
  (
    SELECT *
    FROM `acme-netlog.netlog_features.netlog_model_inputs` AS candidate
    WHERE TIMESTAMP_ADD(candidate.window_end, INTERVAL 5 SECOND) <= CURRENT_TIMESTAMP()
    
  )
);
