DECLARE __ns_this_max_window_start DEFAULT (SELECT MAX(window_start) FROM `acme-netlog.netlog_features.netlog_windows` WHERE FALSE);
DECLARE __ns_partitions DEFAULT (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_features.netlog_windows` WHERE FALSE);
SET __ns_this_max_window_start = (SELECT MAX(window_start) FROM `acme-netlog.netlog_features.netlog_windows`);
CREATE OR REPLACE TABLE `acme-netlog.netlog_features.netlog_windows__ns_stage` AS
-- Traffic per subscriber × destination /22 subnet × window: the seed's twelve features, the
-- distinct destination ports, and the flag, protocol and geography mix of the window.
-- Incremental: each run recomputes the windows that may still grow (the newest, and those
-- still within the allowed lateness of it) and everything after.
WITH events AS (
  SELECT
    subscriberId,
    NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING(dstIP), 22)) AS dst_subnet,
    TIMESTAMP_SECONDS(DIV(UNIX_SECONDS(startTime), 60) * 60) AS window_start,
    srcIP,
    srcPort,
    dstPort,
    txBytes,
    rxBytes,
    tcpFlag,
    protocolName,
    geoCountry,
    label,
    TIMESTAMP_DIFF(endTime, startTime, MILLISECOND) / 1000.0 AS duration_seconds
  FROM `acme-netlog.netlog_raw.netlog_events`
  
  -- this_max() is NULL while the table is empty; on BigQuery it is a script variable, so only
  -- the raw partitions from there on are read. The bound is a window start, so every window
  -- recomputed is recomputed whole.
  WHERE startTime >= TIMESTAMP_SECONDS(DIV(
    UNIX_SECONDS(COALESCE(__ns_this_max_window_start, TIMESTAMP '1970-01-01 00:00:00')) - 5,
    60) * 60)
  
)
SELECT
  subscriberId,
  dst_subnet,
  window_start,
  TIMESTAMP_ADD(window_start, INTERVAL 60 SECOND) AS window_end,
  COUNT(*) AS number_of_records,
  COUNT(DISTINCT srcIP) AS number_of_unique_ips,
  COUNT(DISTINCT srcPort) AS number_of_unique_ports,
  COUNT(DISTINCT dstPort) AS number_of_unique_dst_ports,
  MIN(txBytes) AS min_tx_bytes,
  MAX(txBytes) AS max_tx_bytes,
  AVG(txBytes) AS avg_tx_bytes,
  MIN(rxBytes) AS min_rx_bytes,
  MAX(rxBytes) AS max_rx_bytes,
  AVG(rxBytes) AS avg_rx_bytes,
  MIN(duration_seconds) AS min_duration,
  MAX(duration_seconds) AS max_duration,
  AVG(duration_seconds) AS avg_duration,
  COUNTIF(tcpFlag = 2) / COUNT(*) AS syn_only_share,
  COUNTIF(LOWER(protocolName) = 'udp') / COUNT(*) AS udp_share,
  COUNT(DISTINCT geoCountry) AS number_of_countries,
  -- Ground truth where the source has it (generated or labelled data); never a model feature.
  STRING_AGG(DISTINCT IF(LOWER(label) IN ('normal', 'benign'), NULL, label), ',') AS labels
FROM events
GROUP BY subscriberId, dst_subnet, window_start;
SET __ns_partitions = (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_features.netlog_windows__ns_stage`);
DELETE FROM `acme-netlog.netlog_features.netlog_windows` AS t WHERE DATE(window_start) IN UNNEST(__ns_partitions) AND EXISTS (SELECT 1 FROM `acme-netlog.netlog_features.netlog_windows__ns_stage` AS s WHERE s.subscriberId = t.subscriberId AND s.dst_subnet = t.dst_subnet AND s.window_start = t.window_start);
INSERT INTO `acme-netlog.netlog_features.netlog_windows` SELECT * FROM `acme-netlog.netlog_features.netlog_windows__ns_stage`;
DROP TABLE IF EXISTS `acme-netlog.netlog_features.netlog_windows__ns_stage`;
