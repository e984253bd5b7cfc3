{{ config(materialized='incremental', unique_key=['subscriberId', 'dst_subnet', 'window_start'], partition_by='DATE(window_start)', cluster_by=['subscriberId', 'dst_subnet'],
  assertions={
    'not_null': ['is_anomaly', 'normalized_distance', 'centroid_id', 'model_version'],
    'unique': [['subscriberId', 'dst_subnet', 'window_start']],
    'row_condition': 'normalized_distance >= 0'
  }) }}
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
      -- Windows before the newest scored one are closed and scored already, so only windows
      -- from there on are candidates, on both sides of the anti-join; on BigQuery that bound
      -- is a script variable and prunes partitions.
      AND candidate.window_start >= COALESCE({{ this_max("window_start") }}, TIMESTAMP '1970-01-01 00:00:00')
      AND NOT EXISTS (
        SELECT 1 FROM {{ this }} AS scored
        WHERE scored.window_start >= COALESCE({{ this_max("window_start") }}, TIMESTAMP '1970-01-01 00:00:00')
          AND scored.subscriberId = candidate.subscriberId
          AND scored.dst_subnet = candidate.dst_subnet
          AND scored.window_start = candidate.window_start
      )
    {% endif %}
  )
)
