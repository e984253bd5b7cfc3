DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
DECLARE __ns_this_max_scored_at DEFAULT (SELECT MAX(scored_at) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
DECLARE __ns_partitions DEFAULT (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_inferenced.netlog_anomalies`);
SET __ns_this_max_scored_at = (SELECT MAX(scored_at) FROM `acme-netlog.netlog_inferenced.netlog_anomalies`);
CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage` AS
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
    
      -- Candidates: windows whose events changed since the newest ingestion scored, and
      -- windows that were still open at the last run; of those, the ones not scored as they
      -- stand now.
      AND (
        candidate.ingested_through > __ns_ingested_since_ingested_through
        OR candidate.window_end > TIMESTAMP_SUB(
          COALESCE(__ns_this_max_scored_at, TIMESTAMP '1970-01-01 00:00:00'),
          INTERVAL 5 SECOND)
      )
      AND NOT EXISTS (
        SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_anomalies` AS scored
        WHERE scored.subscriberId = candidate.subscriberId
          AND scored.dst_subnet = candidate.dst_subnet
          AND scored.window_start = candidate.window_start
          AND scored.ingested_through >= candidate.ingested_through
      )
    
  )
);
SET __ns_partitions = (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage`);
DELETE FROM `acme-netlog.netlog_inferenced.netlog_anomalies` AS t WHERE DATE(window_start) IN UNNEST(__ns_partitions) AND EXISTS (SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage` AS s WHERE s.subscriberId = t.subscriberId AND s.dst_subnet = t.dst_subnet AND s.window_start = t.window_start);
INSERT INTO `acme-netlog.netlog_inferenced.netlog_anomalies` SELECT * FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage`;
DROP TABLE IF EXISTS `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage`;
