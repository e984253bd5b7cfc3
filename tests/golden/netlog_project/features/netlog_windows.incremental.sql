DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_features.netlog_windows` WHERE FALSE);
DECLARE __ns_earliest_new_event_ingested_through DEFAULT (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE FALSE);
DECLARE __ns_partitions DEFAULT (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_features.netlog_windows` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_features.netlog_windows`);
SET __ns_earliest_new_event_ingested_through = (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE ingested_at > __ns_ingested_since_ingested_through);
CREATE OR REPLACE TABLE `acme-netlog.netlog_features.netlog_windows__ns_stage_compile` AS
-- Traffic per subscriber × destination subnet (dst_subnet_prefix: /22 by default) × window:
-- the seed's twelve features, the distinct destination ports, and the flag, protocol and
-- geography mix of the window. served_share is the share of flows the subscriber answered
-- rather than opened: its own port is the lower one, the service's. Exporters that orient
-- records by subscriber write a server's replies to its clients this way.
-- Incremental by ingestion, not by event time: each run recomputes, whole, every window of a
-- subscriber that gained events since the newest ingestion the table has seen, so a late batch
-- of any age is featured and a window that grows is replaced. ingested_through, the newest
-- ingestion in a window, is the scoring step's cue to (re-)score it.
WITH

-- earliest_new_event() is NULL when nothing was ingested, and every comparison with it false.
-- On BigQuery both bounds are script variables, so only the raw partitions from the earliest
-- new event on are read.
touched AS (
  SELECT DISTINCT
    subscriberId,
    TIMESTAMP_SECONDS(DIV(UNIX_SECONDS(startTime), 60) * 60) AS window_start
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE startTime >= __ns_earliest_new_event_ingested_through
    AND ingested_at > __ns_ingested_since_ingested_through
),

events AS (
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
    ingested_at,
    TIMESTAMP_DIFF(endTime, startTime, MILLISECOND) / 1000.0 AS duration_seconds
  FROM `acme-netlog.netlog_raw.netlog_events` AS event
  
  WHERE startTime >= TIMESTAMP_SECONDS(DIV(UNIX_SECONDS(__ns_earliest_new_event_ingested_through), 60) * 60)
    AND EXISTS (
      SELECT 1 FROM touched
      WHERE touched.subscriberId = event.subscriberId
        AND touched.window_start = TIMESTAMP_SECONDS(DIV(UNIX_SECONDS(event.startTime), 60) * 60)
    )
  
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
  COUNTIF(srcPort < dstPort) / COUNT(*) AS served_share,
  COUNT(DISTINCT geoCountry) AS number_of_countries,
  MAX(ingested_at) AS ingested_through,
  -- Ground truth where the source has it (generated or labelled data); never a model feature.
  STRING_AGG(DISTINCT IF(LOWER(label) IN ('normal', 'benign'), NULL, label), ',') AS labels
FROM events
GROUP BY subscriberId, dst_subnet, window_start;
SET __ns_partitions = (SELECT ARRAY_AGG(DISTINCT DATE(window_start)) FROM `acme-netlog.netlog_features.netlog_windows__ns_stage_compile`);
DELETE FROM `acme-netlog.netlog_features.netlog_windows` AS t WHERE DATE(window_start) IN UNNEST(__ns_partitions) AND EXISTS (SELECT 1 FROM `acme-netlog.netlog_features.netlog_windows__ns_stage_compile` AS s WHERE s.subscriberId = t.subscriberId AND s.dst_subnet = t.dst_subnet AND s.window_start = t.window_start);
INSERT INTO `acme-netlog.netlog_features.netlog_windows` SELECT * FROM `acme-netlog.netlog_features.netlog_windows__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_features.netlog_windows__ns_stage_compile`;
