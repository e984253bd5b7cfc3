{% set measures = ["number_of_records", "number_of_unique_ips", "number_of_unique_dst_ports", "max_tx_bytes", "max_rx_bytes"] %}
{{ config(materialized='incremental', unique_key=['subscriberId', 'dst_subnet'], cluster_by=['subscriberId'],
  assertions={
    'not_null': ['subscriberId', 'dst_subnet', 'windows'],
    'unique': [['subscriberId', 'dst_subnet']],
    'row_condition': ['windows >= 1', 'spread_number_of_records > 0']
  }) }}
-- What is normal for each entity: per subscriber × destination /22 (dst_subnet '*': the
-- subscriber over all its destinations), the median and a robust spread (IQR / 1.349, at least
-- baseline_min_spread) of the log-scaled window measures over the baseline_lookback_minutes of
-- windows before the entity's newest one. A busy server's heavy minute or a backup host's
-- hourly upload is then ordinary for that host even where it is rare on the network.
-- Incremental: entities whose windows changed since the last run are measured again.
WITH
{% if is_incremental() %}
touched AS (
  SELECT DISTINCT subscriberId
  FROM {{ ref("netlog_windows") }}
  WHERE window_start >= TIMESTAMP_SUB({{ earliest_new_event("ingested_through") }}, INTERVAL {{ var("window_seconds") }} SECOND)
    AND ingested_through > {{ ingested_since("ingested_through") }}
),
{% endif %}
windows AS (
  SELECT
    subscriberId,
    dst_subnet,
    window_start,
    ingested_through,
    {% for m in measures %}LN(1 + {{ m }}) AS {{ m }}{% if not loop.last %},
    {% endif %}{% endfor %}
  FROM {{ ref("netlog_windows") }} AS this_window
  {% if is_incremental() %}
  WHERE window_start >= TIMESTAMP_SUB({{ earliest_new_event("ingested_through") }}, INTERVAL {{ var("baseline_lookback_minutes") }} MINUTE)
    AND subscriberId IN (SELECT subscriberId FROM touched)
  {% endif %}
),
newest AS (
  SELECT subscriberId, MAX(window_start) AS newest_window
  FROM windows
  GROUP BY subscriberId
),
recent AS (
  SELECT windows.*
  FROM windows
  JOIN newest USING (subscriberId)
  WHERE windows.window_start > TIMESTAMP_SUB(newest.newest_window, INTERVAL {{ var("baseline_lookback_minutes") }} MINUTE)
),
entities AS (
  SELECT subscriberId, dst_subnet, window_start, ingested_through, {{ measures | join(sep=", ") }} FROM recent
  UNION ALL
  SELECT subscriberId, '*' AS dst_subnet, window_start, ingested_through, {{ measures | join(sep=", ") }} FROM recent
),
quartiles AS (
  SELECT
    subscriberId,
    dst_subnet,
    COUNT(*) AS windows,
    MAX(ingested_through) AS ingested_through,
    {% for m in measures %}APPROX_QUANTILES({{ m }}, 4) AS {{ m }}_quartiles{% if not loop.last %},
    {% endif %}{% endfor %}
  FROM entities
  GROUP BY subscriberId, dst_subnet
)
SELECT
  subscriberId,
  dst_subnet,
  windows,
  {% for m in measures %}{{ m }}_quartiles[OFFSET(2)] AS median_{{ m }},
  GREATEST(({{ m }}_quartiles[OFFSET(3)] - {{ m }}_quartiles[OFFSET(1)]) / 1.349, {{ var("baseline_min_spread") }}) AS spread_{{ m }},
  {% endfor %}ingested_through
FROM quartiles
