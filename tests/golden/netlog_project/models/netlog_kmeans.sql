-- k-means over every feature window. Runs natively on BigQuery ML; the local engine trains it
-- with the same semantics. The default RANDOM initialization starts from typical windows;
-- KMEANS++ seeds far-away points, which hands a burst of similar attacks (a port-scan wave) a
-- cluster of its own, and their normalized distances then look normal.
CREATE OR REPLACE MODEL `acme-netlog.netlog_models.netlog_kmeans`
OPTIONS (
  model_type = 'kmeans',
  num_clusters = 4,
  standardize_features = TRUE,
  max_iterations = 50
) AS
SELECT * EXCEPT (subscriberId, dst_subnet, window_start, window_end, labels)
FROM `acme-netlog.netlog_features.netlog_model_inputs`;
UPDATE `acme-netlog.netlog_ops.model_registry` SET status = 'retired' WHERE model_name = 'netlog_kmeans' AND status = 'champion' AND run_id <> 'compile';
INSERT INTO `acme-netlog.netlog_ops.model_registry` (model_name, version, relation, run_id, trained_at, status)
SELECT 'netlog_kmeans', COALESCE(MAX(version), 0) + 1, 'models.netlog_kmeans', 'compile', CURRENT_TIMESTAMP(), 'champion'
FROM `acme-netlog.netlog_ops.model_registry` WHERE model_name = 'netlog_kmeans'
AND NOT EXISTS (SELECT 1 FROM `acme-netlog.netlog_ops.model_registry` WHERE model_name = 'netlog_kmeans' AND run_id = 'compile');
