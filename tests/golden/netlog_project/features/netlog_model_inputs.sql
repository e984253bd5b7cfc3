CREATE OR REPLACE VIEW `acme-netlog.netlog_features.netlog_model_inputs` AS
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
      WHEN pair.windows >= 10 THEN 'pair'
      WHEN subscriber.windows >= 10 THEN 'subscriber'
    END AS baseline_scope,
    CASE
      WHEN pair.windows >= 10 THEN (LN(1 + this_window.number_of_records) - pair.median_number_of_records) / pair.spread_number_of_records
      WHEN subscriber.windows >= 10 THEN (LN(1 + this_window.number_of_records) - subscriber.median_number_of_records) / subscriber.spread_number_of_records
    END AS deviation_number_of_records,
    CASE
      WHEN pair.windows >= 10 THEN (LN(1 + this_window.number_of_unique_ips) - pair.median_number_of_unique_ips) / pair.spread_number_of_unique_ips
      WHEN subscriber.windows >= 10 THEN (LN(1 + this_window.number_of_unique_ips) - subscriber.median_number_of_unique_ips) / subscriber.spread_number_of_unique_ips
    END AS deviation_number_of_unique_ips,
    CASE
      WHEN pair.windows >= 10 THEN (LN(1 + this_window.number_of_unique_dst_ports) - pair.median_number_of_unique_dst_ports) / pair.spread_number_of_unique_dst_ports
      WHEN subscriber.windows >= 10 THEN (LN(1 + this_window.number_of_unique_dst_ports) - subscriber.median_number_of_unique_dst_ports) / subscriber.spread_number_of_unique_dst_ports
    END AS deviation_number_of_unique_dst_ports,
    CASE
      WHEN pair.windows >= 10 THEN (LN(1 + this_window.max_tx_bytes) - pair.median_max_tx_bytes) / pair.spread_max_tx_bytes
      WHEN subscriber.windows >= 10 THEN (LN(1 + this_window.max_tx_bytes) - subscriber.median_max_tx_bytes) / subscriber.spread_max_tx_bytes
    END AS deviation_max_tx_bytes,
    CASE
      WHEN pair.windows >= 10 THEN (LN(1 + this_window.max_rx_bytes) - pair.median_max_rx_bytes) / pair.spread_max_rx_bytes
      WHEN subscriber.windows >= 10 THEN (LN(1 + this_window.max_rx_bytes) - subscriber.median_max_rx_bytes) / subscriber.spread_max_rx_bytes
    END AS deviation_max_rx_bytes
  FROM `acme-netlog.netlog_features.netlog_windows` AS this_window
  LEFT JOIN `acme-netlog.netlog_features.netlog_baselines` AS pair
    ON pair.subscriberId = this_window.subscriberId AND pair.dst_subnet = this_window.dst_subnet
  LEFT JOIN `acme-netlog.netlog_features.netlog_baselines` AS subscriber
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
     GREATEST(COALESCE(deviation_number_of_records, 0), COALESCE(deviation_number_of_unique_ips, 0), COALESCE(deviation_number_of_unique_dst_ports, 0), COALESCE(deviation_max_tx_bytes, 0), COALESCE(deviation_max_rx_bytes, 0))) AS entity_deviation,
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
  COALESCE(deviation_number_of_records, 0) AS deviation_number_of_records,
  COALESCE(deviation_number_of_unique_ips, 0) AS deviation_number_of_unique_ips,
  COALESCE(deviation_number_of_unique_dst_ports, 0) AS deviation_number_of_unique_dst_ports,
  COALESCE(deviation_max_tx_bytes, 0) AS deviation_max_tx_bytes,
  COALESCE(deviation_max_rx_bytes, 0) AS deviation_max_rx_bytes
FROM judged;
