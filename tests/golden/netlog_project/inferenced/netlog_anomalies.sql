CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_anomalies`
PARTITION BY DATE(window_start)
CLUSTER BY subscriberId, dst_subnet AS
-- Scores the closed feature windows not scored yet, and re-scores a window that gained events
-- since it was scored (ingested_through moved), with the current model. A window closes once
-- its end plus the allowed lateness has passed; a late batch's windows are closed at once.
-- is_anomaly follows ML.DETECT_ANOMALIES: normalized distance above the training distances'
-- (1 - contamination) quantile: unusual on the network. is_alert judges the window against its
-- own entity as well (features/netlog_model_inputs): a model anomaly alerts when the
-- subscriber has no history with the destination /22 (a new destination, or a new subscriber),
-- or when it is entity_deviation_threshold spreads above what that pair usually does, so a
-- busy server's heavy minute or a backup host's hourly upload stays quiet; and any window
-- entity_alert_threshold spreads above its entity's baseline alerts even when the model, whose
-- clusters the network's heavy hosts shape, did not flag it. The alerts step alerts on
-- is_alert, once per window however often it is re-scored.
SELECT
  subscriberId,
  dst_subnet,
  window_start,
  window_end,
  is_anomaly,
  (is_anomaly AND (baseline_scope IS DISTINCT FROM 'pair' OR entity_deviation >= 3.0))
    OR COALESCE(entity_deviation >= 6.0, FALSE) AS is_alert,
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
