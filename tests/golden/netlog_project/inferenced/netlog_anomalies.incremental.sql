DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
DECLARE __ns_this_max_scored_at DEFAULT (SELECT MAX(scored_at) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
DECLARE __ns_partitions DEFAULT (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_inferenced.netlog_anomalies` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_inferenced.netlog_anomalies`);
SET __ns_this_max_scored_at = (SELECT MAX(scored_at) FROM `acme-netlog.netlog_inferenced.netlog_anomalies`);
CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage_compile` AS
-- Scores the closed feature windows not scored yet, and re-scores a window that gained events
-- since it was scored (ingested_through moved), with the current model. A window closes once
-- its end plus the allowed lateness has passed; a late batch's windows are closed at once.
-- is_anomaly follows ML.DETECT_ANOMALIES: normalized distance above the training distances'
-- (1 - contamination) quantile: unusual on the network. is_alert judges the window against its
-- own entity as well (features/netlog_model_inputs): a model anomaly alerts when it is
-- entity_deviation_threshold spreads above what that subscriber × destination /22 usually
-- does, or on a /22 without a baseline of its own what the subscriber does over all its
-- destinations — a busy server's heavy minute, a backup host's hourly upload and a new
-- network alone stay quiet (a server meets new client networks all the time). An upload to such
-- a /22 (the subscriber opened the flows, netlog_windows.served_share, and sent more than it
-- received) needs only new_destination_upload_threshold spreads above the subscriber's usual
-- largest upload: exfiltration is an upload to somewhere new, where a large download from a
-- new site is everyday traffic. For a new subscriber (no baseline at all) the model alone
-- decides. Any window entity_alert_threshold spreads above its entity's baseline alerts even
-- when the model, whose clusters the network's heavy hosts shape, did not flag it. The alerts
-- step alerts on is_alert, once per window however often it is re-scored.
-- A window of a pair without a baseline of its own yet (fewer than baseline_min_windows
-- windows) recurs when the same pair did as much — no measure entity_deviation_threshold
-- minimum spreads or more above it — a whole number of hours away, within
-- recurrence_tolerance_minutes, inside the baseline lookback. Scheduled jobs (an hourly backup,
-- a nightly export) run at the same minute of the hour; they are known behaviour once they have
-- run twice, though their pair has too few windows for a baseline. An attack repeated on the
-- same pair at some other time is not a recurrence. A recurring window does not alert. Judged
-- over stored history, a job's first run has its second as precedent too.
WITH scored AS (
  SELECT *
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
          SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_anomalies` AS done
          WHERE done.subscriberId = candidate.subscriberId
            AND done.dst_subnet = candidate.dst_subnet
            AND done.window_start = candidate.window_start
            AND done.ingested_through >= candidate.ingested_through
        )
      
    )
  )
),
recurring AS (
  SELECT DISTINCT scored.subscriberId, scored.dst_subnet, scored.window_start
  FROM scored
  JOIN `acme-netlog.netlog_features.netlog_windows` AS this_window
    ON this_window.subscriberId = scored.subscriberId AND this_window.dst_subnet = scored.dst_subnet
      AND this_window.window_start = scored.window_start
  JOIN `acme-netlog.netlog_features.netlog_windows` AS other
    ON other.subscriberId = scored.subscriberId AND other.dst_subnet = scored.dst_subnet
  WHERE scored.baseline_scope IS DISTINCT FROM 'pair'
    AND ABS(TIMESTAMP_DIFF(other.window_start, scored.window_start, MINUTE))
      BETWEEN 60 - 2 AND 1440 + 2
    AND MOD(ABS(TIMESTAMP_DIFF(other.window_start, scored.window_start, MINUTE)) + 2, 60)
      <= 2 * 2
    AND LN(1 + other.number_of_records) >= LN(1 + this_window.number_of_records) - 4.0 * 0.5
    AND LN(1 + other.number_of_unique_ips) >= LN(1 + this_window.number_of_unique_ips) - 4.0 * 0.5
    AND LN(1 + other.number_of_unique_dst_ports) >= LN(1 + this_window.number_of_unique_dst_ports) - 4.0 * 0.5
    AND LN(1 + other.max_tx_bytes) >= LN(1 + this_window.max_tx_bytes) - 4.0 * 0.5
    AND LN(1 + other.max_rx_bytes) >= LN(1 + this_window.max_rx_bytes) - 4.0 * 0.5
    
)
SELECT
  scored.subscriberId,
  scored.dst_subnet,
  scored.window_start,
  scored.window_end,
  is_anomaly,
  ((is_anomaly AND (baseline_scope IS NULL
      OR entity_deviation >= 4.0
      OR (baseline_scope = 'subscriber' AND this_window.served_share <= 0.5
        AND (this_window.max_rx_bytes IS NULL OR this_window.max_tx_bytes > this_window.max_rx_bytes)
        AND deviation_max_tx_bytes >= 1.0)))
    OR COALESCE(entity_deviation >= 6.0, FALSE))
    AND recurring.window_start IS NULL AS is_alert,
  recurring.window_start IS NOT NULL AS recurring,
  normalized_distance,
  centroid_id,
  scored.* EXCEPT (subscriberId, dst_subnet, window_start, window_end, is_anomaly, normalized_distance, centroid_id),
  1 AS model_version,
  CURRENT_TIMESTAMP() AS scored_at
FROM scored
LEFT JOIN `acme-netlog.netlog_features.netlog_windows` AS this_window USING (subscriberId, dst_subnet, window_start)
LEFT JOIN recurring USING (subscriberId, dst_subnet, window_start);
SET __ns_partitions = (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage_compile`);
DELETE FROM `acme-netlog.netlog_inferenced.netlog_anomalies` AS t WHERE DATE(window_start) IN UNNEST(__ns_partitions) AND EXISTS (SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage_compile` AS s WHERE s.subscriberId = t.subscriberId AND s.dst_subnet = t.dst_subnet AND s.window_start = t.window_start);
INSERT INTO `acme-netlog.netlog_inferenced.netlog_anomalies` SELECT * FROM `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_inferenced.netlog_anomalies__ns_stage_compile`;
