CREATE OR REPLACE MODEL `acme-netlog.fx_models.points_kmeans`
OPTIONS (
  model_type = 'kmeans',
  num_clusters = 2,
  kmeans_init_method = 'CUSTOM',
  kmeans_init_col = 'seed',
  distance_type = 'EUCLIDEAN',
  standardize_features = TRUE,
  max_iterations = 10,
  early_stop = TRUE,
  min_rel_progress = 0.01
) AS
SELECT x, y, kind, seed FROM `acme-netlog.fx_features.points`;
UPDATE `acme-netlog.fx_ops.model_registry` SET status = 'retired' WHERE model_name = 'points_kmeans' AND status = 'champion' AND run_id <> 'compile';
INSERT INTO `acme-netlog.fx_ops.model_registry` (model_name, version, relation, run_id, trained_at, status)
SELECT 'points_kmeans', COALESCE(MAX(version), 0) + 1, 'models.points_kmeans', 'compile', CURRENT_TIMESTAMP(), 'champion'
FROM `acme-netlog.fx_ops.model_registry` WHERE model_name = 'points_kmeans'
AND NOT EXISTS (SELECT 1 FROM `acme-netlog.fx_ops.model_registry` WHERE model_name = 'points_kmeans' AND run_id = 'compile');
