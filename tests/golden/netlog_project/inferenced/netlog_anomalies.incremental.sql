DECLARE __ns_this_max_window_start DEFAULT (SELECT MAX(window_start) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
DECLARE __ns_partitions DEFAULT (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
SET __ns_this_max_window_start = (SELECT MAX(window_start) FROM `acme-netlog.netlog_inferenced.netlog_anomalies`);
CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage` AS
-- Scores the closed feature windows not scored yet with the current model. A window closes
-- once its end plus the allowed lateness has passed; streaming ingest rejects the events that
-- arrive later. is_anomaly follows ML.DETECT_ANOMALIES: normalized distance above the training
-- distances' (1 - contamination) quantile.
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
    
      -- Windows before the newest scored one are closed and scored already, so only windows
      -- from there on are candidates, on both sides of the anti-join; on BigQuery that bound
      -- is a script variable and prunes partitions.
      AND candidate.window_start >= COALESCE(__ns_this_max_window_start, TIMESTAMP '1970-01-01 00:00:00')
      AND NOT EXISTS (
        SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_anomalies` AS scored
        WHERE scored.window_start >= COALESCE(__ns_this_max_window_start, TIMESTAMP '1970-01-01 00:00:00')
          AND scored.subscriberId = candidate.subscriberId
          AND scored.dst_subnet = candidate.dst_subnet
          AND scored.window_start = candidate.window_start
      )
    
  )
);
SET __ns_partitions = (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage`);
DELETE FROM `acme-netlog.netlog_inferenced.netlog_anomalies` AS t WHERE DATE(window_start) IN UNNEST(__ns_partitions) AND EXISTS (SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage` AS s WHERE s.subscriberId = t.subscriberId AND s.dst_subnet = t.dst_subnet AND s.window_start = t.window_start);
INSERT INTO `acme-netlog.netlog_inferenced.netlog_anomalies` SELECT * FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage`;
DROP TABLE IF EXISTS `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage`;
