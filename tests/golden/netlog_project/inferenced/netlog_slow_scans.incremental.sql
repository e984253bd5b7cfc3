DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_inferenced.netlog_slow_scans` WHERE FALSE);
DECLARE __ns_earliest_new_event_ingested_through DEFAULT (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_inferenced.netlog_slow_scans`);
SET __ns_earliest_new_event_ingested_through = (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE ingested_at > __ns_ingested_since_ingested_through);
CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_slow_scans__ns_stage_compile` AS
-- Slow scans: one host probing many ports of another with bare SYNs, a few a minute over an
-- hour, so no single window holds enough ports to look like a scan. Each subscriber ×
-- destination pair is judged on its flows in the slow_scan_lookback_minutes before its newest
-- one: the distinct ports it touched, the share of SYN-only flows (a probe that got no
-- handshake), and the most ports it touched in any one minute (the rate). The score is the
-- SYN-only share, scaled by how far past slow_scan_min_ports the ports go (saturating at
-- twice that), and down when more than rare_destination_peers subscribers talk to the host.
-- A finding spans at least slow_scan_min_span_minutes: a scan inside one window is the window
-- model's, and alerting it here too would make two incidents of one.
-- Incremental: pairs that gained flows since the last run are judged again.
WITH

touched AS (
  SELECT DISTINCT subscriberId, dstIP
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE startTime >= __ns_earliest_new_event_ingested_through
    AND ingested_at > __ns_ingested_since_ingested_through
),

flows AS (
  SELECT subscriberId, dstIP AS destination, dstPort, tcpFlag, startTime, ingested_at
  FROM `acme-netlog.netlog_raw.netlog_events` AS event
  
  WHERE startTime >= TIMESTAMP_SUB(__ns_earliest_new_event_ingested_through, INTERVAL 120 MINUTE)
    AND EXISTS (SELECT 1 FROM touched WHERE touched.subscriberId = event.subscriberId AND touched.dstIP = event.dstIP)
  
),
newest AS (
  SELECT subscriberId, destination, MAX(startTime) AS last_seen
  FROM flows
  GROUP BY subscriberId, destination
),
recent AS (
  SELECT flows.*
  FROM flows
  JOIN newest USING (subscriberId, destination)
  WHERE flows.startTime >= TIMESTAMP_SUB(newest.last_seen, INTERVAL 120 MINUTE)
),
per_minute AS (
  SELECT subscriberId, destination, MAX(ports) AS max_ports_per_minute
  FROM (
    SELECT subscriberId, destination, TIMESTAMP_TRUNC(startTime, MINUTE) AS minute, COUNT(DISTINCT dstPort) AS ports
    FROM recent
    GROUP BY subscriberId, destination, minute
  )
  GROUP BY subscriberId, destination
),
pairs AS (
  SELECT
    subscriberId,
    destination,
    COUNT(*) AS connections,
    COUNT(DISTINCT dstPort) AS distinct_ports,
    COUNTIF(tcpFlag = 2) / COUNT(*) AS syn_only_share,
    MIN(startTime) AS first_seen,
    MAX(startTime) AS last_seen,
    MAX(ingested_at) AS ingested_through
  FROM recent
  GROUP BY subscriberId, destination
),
peers AS (
  SELECT dstIP AS destination, COUNT(DISTINCT subscriberId) AS peers
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE dstIP IN (SELECT destination FROM pairs)
    AND startTime >= (SELECT TIMESTAMP_SUB(MIN(first_seen), INTERVAL 120 MINUTE) FROM pairs)
  GROUP BY dstIP
),
scored AS (
  SELECT
    pairs.*,
    per_minute.max_ports_per_minute,
    peers.peers,
    syn_only_share
      * LEAST(1.0, distinct_ports / (2.0 * 20))
      * LEAST(1.0, 3 / peers.peers) AS score
  FROM pairs
  JOIN per_minute USING (subscriberId, destination)
  JOIN peers USING (destination)
)
SELECT
  subscriberId,
  destination,
  first_seen,
  last_seen,
  connections,
  distinct_ports,
  max_ports_per_minute,
  syn_only_share,
  peers,
  score,
  distinct_ports >= 20 AND syn_only_share >= 0.8 AND score >= 0.5
    AND TIMESTAMP_DIFF(last_seen, first_seen, MINUTE) >= 10 AS is_finding,
  FORMAT('%d distinct ports probed over %d min, at most %d in a minute, %.0f%% SYN-only, host used by %d subscriber(s)',
    distinct_ports, DIV(TIMESTAMP_DIFF(last_seen, first_seen, SECOND), 60), max_ports_per_minute, 100 * syn_only_share, peers) AS evidence,
  ingested_through
FROM scored;
DELETE FROM `acme-netlog.netlog_inferenced.netlog_slow_scans` AS t WHERE EXISTS (SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_slow_scans__ns_stage_compile` AS s WHERE s.subscriberId = t.subscriberId AND s.destination = t.destination);
INSERT INTO `acme-netlog.netlog_inferenced.netlog_slow_scans` SELECT * FROM `acme-netlog.netlog_inferenced.netlog_slow_scans__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_inferenced.netlog_slow_scans__ns_stage_compile`;
