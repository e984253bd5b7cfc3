{% set measures = ["number_of_records", "number_of_unique_ips", "number_of_unique_dst_ports", "max_tx_bytes", "max_rx_bytes"] %}
{{ config(materialized='view') }}
-- What the model sees: the window keys and bookkeeping, then the features. Counts, bytes and
-- durations are heavy-tailed, so they enter log-scaled (LN(1 + x)); on raw values k-means
-- spends its clusters on the tail and misses the attacks. Training and detection both read
-- this view, so they can never disagree on a transform.
-- Each window is also judged against its own entity (features/netlog_baselines): deviation_<m>
-- is how many spreads the window's log measure lies from the entity's median, and
-- entity_deviation the largest. They are not model features: a baseline moves with the
-- entity's traffic, and a model trained on yesterday's deviations would misread today's. The entity is the subscriber × destination /22 when that pair has
-- baseline_min_windows windows, else the subscriber over all its destinations, else none yet
-- (a new subscriber: deviations 0 for the model, entity_deviation NULL, the model alone judges).
WITH judged AS (
  SELECT
    this_window.*,
    CASE
      WHEN pair.windows >= {{ var("baseline_min_windows") }} THEN 'pair'
      WHEN subscriber.windows >= {{ var("baseline_min_windows") }} THEN 'subscriber'
    END AS baseline_scope,
    {% for m in measures %}CASE
      WHEN pair.windows >= {{ var("baseline_min_windows") }} THEN (LN(1 + this_window.{{ m }}) - pair.median_{{ m }}) / pair.spread_{{ m }}
      WHEN subscriber.windows >= {{ var("baseline_min_windows") }} THEN (LN(1 + this_window.{{ m }}) - subscriber.median_{{ m }}) / subscriber.spread_{{ m }}
    END AS deviation_{{ m }}{% if not loop.last %},
    {% endif %}{% endfor %}
  FROM {{ ref("netlog_windows") }} AS this_window
  LEFT JOIN {{ ref("netlog_baselines") }} AS pair
    ON pair.subscriberId = this_window.subscriberId AND pair.dst_subnet = this_window.dst_subnet
  LEFT JOIN {{ ref("netlog_baselines") }} AS subscriber
    ON subscriber.subscriberId = this_window.subscriberId AND subscriber.dst_subnet = '*'
)
SELECT
  subscriberId,
  dst_subnet,
  window_start,
  window_end,
  ingested_through,
  labels,
  baseline_scope,
  IF(baseline_scope IS NULL, NULL,
     GREATEST({% for m in measures %}COALESCE(deviation_{{ m }}, 0){% if not loop.last %}, {% endif %}{% endfor %})) AS entity_deviation,
  LN(1 + number_of_records) AS log_records,
  LN(1 + number_of_unique_ips) AS log_unique_ips,
  LN(1 + number_of_unique_ports) AS log_unique_ports,
  LN(1 + number_of_unique_dst_ports) AS log_unique_dst_ports,
  LN(1 + min_tx_bytes) AS log_min_tx_bytes,
  LN(1 + max_tx_bytes) AS log_max_tx_bytes,
  LN(1 + avg_tx_bytes) AS log_avg_tx_bytes,
  LN(1 + min_rx_bytes) AS log_min_rx_bytes,
  LN(1 + max_rx_bytes) AS log_max_rx_bytes,
  LN(1 + avg_rx_bytes) AS log_avg_rx_bytes,
  LN(1 + min_duration) AS log_min_duration,
  LN(1 + max_duration) AS log_max_duration,
  LN(1 + avg_duration) AS log_avg_duration,
  syn_only_share,
  udp_share,
  number_of_countries,
  {% for m in measures %}COALESCE(deviation_{{ m }}, 0) AS deviation_{{ m }}{% if not loop.last %},
  {% endif %}{% endfor %}
FROM judged
