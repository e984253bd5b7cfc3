DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_inferenced.netlog_long_connections` WHERE FALSE);
DECLARE __ns_earliest_new_event_ingested_through DEFAULT (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_inferenced.netlog_long_connections`);
SET __ns_earliest_new_event_ingested_through = (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE ingested_at > __ns_ingested_since_ingested_through);
CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_long_connections__ns_stage_compile` AS
-- Long-lived connections: one connection held open for hours — a tunnel, a reverse shell, an
-- implant keeping a session to its controller — where every minute of it looks ordinary.
-- A connection is its 5-tuple (source address and port, destination address and port,
-- protocol). Exporters cut a long connection into several records (at their active timeout,
-- commonly 30 min, and after an idle spell), so the records of one 5-tuple are one connection
-- while each starts within long_connection_idle_minutes of the end of the one before and that
-- one did not close it (FIN or RST). A new connection gets a new source port, so two short
-- connections are chained only if one reuses the other's port within minutes.
-- Each subscriber × destination pair is judged on the longest connection among its flows in
-- the long_connection_lookback_minutes before its newest one. The score is how far that
-- connection goes past long_connection_min_minutes (saturating at twice that), scaled down
-- when more than rare_destination_peers subscribers talk to the destination: the sessions
-- many clients hold (push services, VPN gateways) are not a controller.
-- Incremental: pairs that gained flows since the last run are judged again.
WITH

touched AS (
  SELECT DISTINCT subscriberId, dstIP
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE startTime >= __ns_earliest_new_event_ingested_through
    AND ingested_at > __ns_ingested_since_ingested_through
),

flows AS (
  SELECT subscriberId, dstIP AS destination, srcIP, srcPort, dstPort, protocolNumber, tcpFlag,
    startTime, endTime, txBytes, rxBytes, ingested_at
  FROM `acme-netlog.netlog_raw.netlog_events` AS event
  
  WHERE startTime >= TIMESTAMP_SUB(__ns_earliest_new_event_ingested_through, INTERVAL 240 MINUTE)
    AND EXISTS (SELECT 1 FROM touched WHERE touched.subscriberId = event.subscriberId AND touched.dstIP = event.dstIP)
  
),
newest AS (
  SELECT subscriberId, destination, MAX(startTime) AS last_start
  FROM flows
  GROUP BY subscriberId, destination
),
recent AS (
  SELECT
    flows.*,
    LAG(flows.endTime) OVER connection AS previous_end,
    LAG(flows.tcpFlag) OVER connection AS previous_flag
  FROM flows
  JOIN newest USING (subscriberId, destination)
  WHERE flows.startTime >= TIMESTAMP_SUB(newest.last_start, INTERVAL 240 MINUTE)
  WINDOW connection AS (
    PARTITION BY flows.subscriberId, flows.destination, flows.srcIP, flows.srcPort, flows.dstPort, flows.protocolNumber
    ORDER BY flows.startTime, flows.endTime
  )
),
chained AS (
  SELECT
    *,
    SUM(IF(
      previous_end IS NULL
        OR startTime > TIMESTAMP_ADD(previous_end, INTERVAL 10 MINUTE)
        OR COALESCE(previous_flag, 0) & 5 != 0,
      1, 0)) OVER (
      PARTITION BY subscriberId, destination, srcIP, srcPort, dstPort, protocolNumber
      ORDER BY startTime, endTime
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS connection_number
  FROM recent
),
connections AS (
  SELECT
    subscriberId,
    destination,
    dstPort,
    protocolNumber,
    COUNT(*) AS records,
    MIN(startTime) AS opened,
    MAX(endTime) AS last_active,
    TIMESTAMP_DIFF(MAX(endTime), MIN(startTime), SECOND) / 60.0 AS duration_minutes,
    SUM(txBytes) AS tx_bytes,
    SUM(COALESCE(rxBytes, 0)) AS rx_bytes
  FROM chained
  GROUP BY subscriberId, destination, srcIP, srcPort, dstPort, protocolNumber, connection_number
),
longest AS (
  SELECT * EXCEPT (rank)
  FROM (
    SELECT
      connections.*,
      ROW_NUMBER() OVER (PARTITION BY subscriberId, destination ORDER BY duration_minutes DESC, opened) AS rank
    FROM connections
  )
  WHERE rank = 1
),
pairs AS (
  SELECT subscriberId, destination, MAX(ingested_at) AS ingested_through
  FROM recent
  GROUP BY subscriberId, destination
),
peers AS (
  SELECT dstIP AS destination, COUNT(DISTINCT subscriberId) AS peers
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE dstIP IN (SELECT destination FROM longest)
    AND startTime >= (SELECT TIMESTAMP_SUB(MIN(opened), INTERVAL 240 MINUTE) FROM longest)
  GROUP BY dstIP
),
scored AS (
  SELECT
    longest.*,
    pairs.ingested_through,
    peers.peers,
    LEAST(1.0, duration_minutes / (2.0 * 60))
      * LEAST(1.0, 3 / peers.peers) AS score
  FROM longest
  JOIN pairs USING (subscriberId, destination)
  JOIN peers USING (destination)
)
SELECT
  subscriberId,
  destination,
  opened AS first_seen,
  last_active AS last_seen,
  dstPort,
  protocolNumber,
  records,
  duration_minutes,
  tx_bytes,
  rx_bytes,
  peers,
  score,
  duration_minutes >= 60 AND score >= 0.5 AS is_finding,
  FORMAT('one connection to port %d open for %d min (%d records), %d bytes sent and %d received, destination used by %d subscriber(s)',
    dstPort, CAST(FLOOR(duration_minutes) AS INT64), records, tx_bytes, rx_bytes, peers) AS evidence,
  ingested_through
FROM scored;
DELETE FROM `acme-netlog.netlog_inferenced.netlog_long_connections` AS t WHERE EXISTS (SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_long_connections__ns_stage_compile` AS s WHERE s.subscriberId = t.subscriberId AND s.destination = t.destination);
INSERT INTO `acme-netlog.netlog_inferenced.netlog_long_connections` SELECT * FROM `acme-netlog.netlog_inferenced.netlog_long_connections__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_inferenced.netlog_long_connections__ns_stage_compile`;
