{{ config(materialized='incremental', unique_key=['subscriberId', 'dst_subnet', 'window_start'], partition_by='DATE(window_start)', cluster_by=['subscriberId', 'dst_subnet'],
  assertions={
    'not_null': ['is_anomaly', 'is_alert', 'normalized_distance', 'centroid_id', 'model_version'],
    'unique': [['subscriberId', 'dst_subnet', 'window_start']],
    'row_condition': 'normalized_distance >= 0'
  }) }}
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
  (is_anomaly AND (baseline_scope IS DISTINCT FROM 'pair' OR entity_deviation >= {{ var("entity_deviation_threshold") }}))
    OR COALESCE(entity_deviation >= {{ var("entity_alert_threshold") }}, FALSE) AS is_alert,
  normalized_distance,
  centroid_id,
  * EXCEPT (subscriberId, dst_subnet, window_start, window_end, is_anomaly, normalized_distance, centroid_id),
  {{ model_version("netlog_kmeans") }} AS model_version,
  CURRENT_TIMESTAMP() AS scored_at
FROM ML.DETECT_ANOMALIES(
  MODEL {{ model("netlog_kmeans") }},
  STRUCT({{ var("contamination") }} AS contamination),
  (
    SELECT *
    FROM {{ ref("netlog_model_inputs") }} AS candidate
    WHERE TIMESTAMP_ADD(candidate.window_end, INTERVAL {{ var("allowed_lateness_seconds") }} SECOND) <= CURRENT_TIMESTAMP()
    {% if is_incremental() %}
      -- Candidates: windows whose events changed since the newest ingestion scored, and
      -- windows that were still open at the last run; of those, the ones not scored as they
      -- stand now.
      AND (
        candidate.ingested_through > {{ ingested_since("ingested_through") }}
        OR candidate.window_end > TIMESTAMP_SUB(
          COALESCE({{ this_max("scored_at") }}, TIMESTAMP '1970-01-01 00:00:00'),
          INTERVAL {{ var("allowed_lateness_seconds") }} SECOND)
      )
      AND NOT EXISTS (
        SELECT 1 FROM {{ this }} AS scored
        WHERE scored.subscriberId = candidate.subscriberId
          AND scored.dst_subnet = candidate.dst_subnet
          AND scored.window_start = candidate.window_start
          AND scored.ingested_through >= candidate.ingested_through
      )
    {% endif %}
  )
)
