{{ config(materialized='view') }}
-- What the model sees: the window keys and bookkeeping, then the features. Counts, bytes and durations are
-- heavy-tailed, so they enter log-scaled (LN(1 + x)); on raw values k-means spends its clusters
-- on the tail and misses the attacks. Training and detection both read this view, so they can
-- never disagree on a transform.
SELECT
  subscriberId,
  dst_subnet,
  window_start,
  window_end,
  ingested_through,
  labels,
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
  number_of_countries
FROM {{ ref("netlog_windows") }}
