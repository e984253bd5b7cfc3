DECLARE __ns_ingested_since_ingested_through DEFAULT (SELECT MAX(ingested_through) FROM `acme-netlog.netlog_inferenced.netlog_beacons` WHERE FALSE);
DECLARE __ns_earliest_new_event_ingested_through DEFAULT (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE FALSE);
SET __ns_ingested_since_ingested_through = (SELECT TIMESTAMP_SUB(COALESCE(MAX(ingested_through), TIMESTAMP '1970-01-01 00:00:00'), INTERVAL 600 SECOND) FROM `acme-netlog.netlog_inferenced.netlog_beacons`);
SET __ns_earliest_new_event_ingested_through = (SELECT MIN(first_start) FROM `acme-netlog.netlog_ops.ingest_batches` WHERE ingested_at > __ns_ingested_since_ingested_through);
CREATE OR REPLACE TABLE `acme-netlog.netlog_inferenced.netlog_beacons__ns_stage_compile` AS
-- Beaconing: a host calling the same destination at a steady rhythm with same-sized requests,
-- for hours, somewhere few others go: what malware checking in with its controller looks like,
-- and what a one-minute window cannot show. Each subscriber × destination pair is judged on
-- its flows in the beacon_lookback_minutes before its newest one:
--   timing  1 - IQR/median of the gaps between connections (a metronome scores near 1,
--           human or random traffic, whose gaps spread as wide as they are long, near 0);
--   size    1 - IQR/median of the bytes per connection;
--   span    how much of the lookback the calls cover;
-- weighted 0.5/0.2/0.3, then scaled down when more than rare_destination_peers subscribers talk
-- to the destination (a popular service polled by many clients is not a controller). A finding
-- also needs beacon_min_connections calls spanning at least half the lookback: a burst of
-- evenly spaced calls inside a few minutes is the window model's to judge, not a beacon.
-- Incremental: pairs that gained flows since the last run are judged again.
WITH

touched AS (
  SELECT DISTINCT subscriberId, dstIP
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE startTime >= __ns_earliest_new_event_ingested_through
    AND ingested_at > __ns_ingested_since_ingested_through
),

flows AS (
  SELECT subscriberId, dstIP AS destination, startTime, txBytes + COALESCE(rxBytes, 0) AS bytes, ingested_at
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
  SELECT
    flows.*,
    TIMESTAMP_DIFF(flows.startTime, LAG(flows.startTime) OVER (PARTITION BY flows.subscriberId, flows.destination ORDER BY flows.startTime), MILLISECOND) / 1000.0 AS gap_seconds
  FROM flows
  JOIN newest USING (subscriberId, destination)
  WHERE flows.startTime >= TIMESTAMP_SUB(newest.last_seen, INTERVAL 120 MINUTE)
),
pairs AS (
  SELECT
    subscriberId,
    destination,
    COUNT(*) AS connections,
    MIN(startTime) AS first_seen,
    MAX(startTime) AS last_seen,
    APPROX_QUANTILES(gap_seconds, 4) AS gap_quartiles,
    APPROX_QUANTILES(bytes, 4) AS byte_quartiles,
    MAX(ingested_at) AS ingested_through
  FROM recent
  GROUP BY subscriberId, destination
  HAVING COUNT(*) >= 2
),
peers AS (
  SELECT dstIP AS destination, COUNT(DISTINCT subscriberId) AS peers
  FROM `acme-netlog.netlog_raw.netlog_events`
  WHERE dstIP IN (SELECT destination FROM pairs)
    AND startTime >= (SELECT TIMESTAMP_SUB(MIN(first_seen), INTERVAL 120 MINUTE) FROM pairs)
  GROUP BY dstIP
),
measured AS (
  SELECT
    pairs.*,
    peers.peers,
    gap_quartiles[OFFSET(2)] AS median_gap_seconds,
    GREATEST(0.0, 1 - SAFE_DIVIDE(gap_quartiles[OFFSET(3)] - gap_quartiles[OFFSET(1)], gap_quartiles[OFFSET(2)])) AS timing_regularity,
    GREATEST(0.0, 1 - SAFE_DIVIDE(byte_quartiles[OFFSET(3)] - byte_quartiles[OFFSET(1)], byte_quartiles[OFFSET(2)])) AS size_regularity,
    LEAST(1.0, TIMESTAMP_DIFF(last_seen, first_seen, SECOND) / (60.0 * 120)) AS span_coverage,
    LEAST(1.0, 3 / peers.peers) AS rarity
  FROM pairs
  JOIN peers USING (destination)
),
scored AS (
  SELECT
    *,
    COALESCE(0.5 * timing_regularity + 0.2 * size_regularity + 0.3 * span_coverage, 0.0) * rarity AS score
  FROM measured
)
SELECT
  subscriberId,
  destination,
  first_seen,
  last_seen,
  connections,
  median_gap_seconds,
  timing_regularity,
  size_regularity,
  span_coverage,
  peers,
  score,
  connections >= 20 AND span_coverage >= 0.5 AND score >= 0.7 AS is_finding,
  FORMAT('%d connections over %d min, one every %.0f s (timing regularity %.2f), size regularity %.2f, destination used by %d subscriber(s)',
    connections, DIV(TIMESTAMP_DIFF(last_seen, first_seen, SECOND), 60), median_gap_seconds, timing_regularity, size_regularity, peers) AS evidence,
  ingested_through
FROM scored;
DELETE FROM `acme-netlog.netlog_inferenced.netlog_beacons` AS t WHERE EXISTS (SELECT 1 FROM `acme-netlog.netlog_inferenced.netlog_beacons__ns_stage_compile` AS s WHERE s.subscriberId = t.subscriberId AND s.destination = t.destination);
INSERT INTO `acme-netlog.netlog_inferenced.netlog_beacons` SELECT * FROM `acme-netlog.netlog_inferenced.netlog_beacons__ns_stage_compile`;
DROP TABLE IF EXISTS `acme-netlog.netlog_inferenced.netlog_beacons__ns_stage_compile`;
