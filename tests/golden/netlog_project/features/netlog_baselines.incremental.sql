DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_features.netlog_baselines` WHERE FALSE);
DECLARE __ns_earliest_new_event_ingested_through DEFAULT (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_features.netlog_baselines`);
SET __ns_earliest_new_event_ingested_through = (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE ingested_at > __ns_ingested_since_ingested_through);
CREATE OR REPLACE TABLE `acme-netlog.netlog_features.netlog_baselines__ns_stage_compile` AS
-- What is normal for each entity: per subscriber × destination /22 (dst_subnet '*': the
-- subscriber over all its destinations), the median and a robust spread (IQR / 1.349, at least
-- baseline_min_spread) of the log-scaled window measures over the baseline_lookback_minutes of
-- windows before the entity's newest one. A busy server's heavy minute or a backup host's
-- hourly upload is then ordinary for that host even where it is rare on the network.
-- Incremental: entities whose windows changed since the last run are measured again.
WITH

touched AS (
  SELECT DISTINCT subscriberId
  FROM `acme-netlog.netlog_features.netlog_windows`
  WHERE window_start >= TIMESTAMP_SUB(__ns_earliest_new_event_ingested_through, INTERVAL 60 SECOND)
    AND ingested_through > __ns_ingested_since_ingested_through
),

windows AS (
  SELECT
    subscriberId,
    dst_subnet,
    window_start,
    ingested_through,
    LN(1 + number_of_records) AS number_of_records,
    LN(1 + number_of_unique_ips) AS number_of_unique_ips,
    LN(1 + number_of_unique_dst_ports) AS number_of_unique_dst_ports,
    LN(1 + max_tx_bytes) AS max_tx_bytes,
    LN(1 + max_rx_bytes) AS max_rx_bytes
  FROM `acme-netlog.netlog_features.netlog_windows` AS this_window
  
  WHERE window_start >= TIMESTAMP_SUB(__ns_earliest_new_event_ingested_through, INTERVAL 1440 MINUTE)
    AND subscriberId IN (SELECT subscriberId FROM touched)
  
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
  WHERE windows.window_start > TIMESTAMP_SUB(newest.newest_window, INTERVAL 1440 MINUTE)
),
entities AS (
  SELECT subscriberId, dst_subnet, window_start, ingested_through, number_of_records, number_of_unique_ips, number_of_unique_dst_ports, max_tx_bytes, max_rx_bytes FROM recent
  UNION ALL
  SELECT subscriberId, '*' AS dst_subnet, window_start, ingested_through, number_of_records, number_of_unique_ips, number_of_unique_dst_ports, max_tx_bytes, max_rx_bytes FROM recent
),
quartiles AS (
  SELECT
    subscriberId,
    dst_subnet,
    COUNT(*) AS windows,
    MAX(ingested_through) AS ingested_through,
    APPROX_QUANTILES(number_of_records, 4) AS number_of_records_quartiles,
    APPROX_QUANTILES(number_of_unique_ips, 4) AS number_of_unique_ips_quartiles,
    APPROX_QUANTILES(number_of_unique_dst_ports, 4) AS number_of_unique_dst_ports_quartiles,
    APPROX_QUANTILES(max_tx_bytes, 4) AS max_tx_bytes_quartiles,
    APPROX_QUANTILES(max_rx_bytes, 4) AS max_rx_bytes_quartiles
  FROM entities
  GROUP BY subscriberId, dst_subnet
)
SELECT
  subscriberId,
  dst_subnet,
  windows,
  number_of_records_quartiles[OFFSET(2)] AS median_number_of_records,
  GREATEST((number_of_records_quartiles[OFFSET(3)] - number_of_records_quartiles[OFFSET(1)]) / 1.349, 0.5) AS spread_number_of_records,
  number_of_unique_ips_quartiles[OFFSET(2)] AS median_number_of_unique_ips,
  GREATEST((number_of_unique_ips_quartiles[OFFSET(3)] - number_of_unique_ips_quartiles[OFFSET(1)]) / 1.349, 0.5) AS spread_number_of_unique_ips,
  number_of_unique_dst_ports_quartiles[OFFSET(2)] AS median_number_of_unique_dst_ports,
  GREATEST((number_of_unique_dst_ports_quartiles[OFFSET(3)] - number_of_unique_dst_ports_quartiles[OFFSET(1)]) / 1.349, 0.5) AS spread_number_of_unique_dst_ports,
  max_tx_bytes_quartiles[OFFSET(2)] AS median_max_tx_bytes,
  GREATEST((max_tx_bytes_quartiles[OFFSET(3)] - max_tx_bytes_quartiles[OFFSET(1)]) / 1.349, 0.5) AS spread_max_tx_bytes,
  max_rx_bytes_quartiles[OFFSET(2)] AS median_max_rx_bytes,
  GREATEST((max_rx_bytes_quartiles[OFFSET(3)] - max_rx_bytes_quartiles[OFFSET(1)]) / 1.349, 0.5) AS spread_max_rx_bytes,
  ingested_through
FROM quartiles;
DELETE FROM `acme-netlog.netlog_features.netlog_baselines` AS t WHERE EXISTS (SELECT 1 FROM `acme-netlog.netlog_features.netlog_baselines__ns_stage_compile` AS s WHERE s.subscriberId = t.subscriberId AND s.dst_subnet = t.dst_subnet);
INSERT INTO `acme-netlog.netlog_features.netlog_baselines` SELECT * FROM `acme-netlog.netlog_features.netlog_baselines__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_features.netlog_baselines__ns_stage_compile`;
