CREATE MODEL IF NOT EXISTS `acme-netlog.fx_models.points_cosine`
OPTIONS (model_type = 'KMEANS', num_clusters = 2, kmeans_init_method = 'KMEANS++', distance_type = 'COSINE',
         standardize_features = FALSE, early_stop = FALSE, warm_start = FALSE) AS
SELECT x, y FROM `acme-netlog.fx_features.points` WHERE x IS NOT NULL AND y IS NOT NULL;
UPDATE `acme-netlog.fx_ops.model_registry` SET status = 'retired' WHERE model_name = 'points_cosine' AND status = 'champion' AND run_id <> 'compile';
INSERT INTO `acme-netlog.fx_ops.model_registry` (model_name, version, relation, run_id, trained_at, status)
SELECT 'points_cosine', COALESCE(MAX(version), 0) + 1, 'models.points_cosine', 'compile', CURRENT_TIMESTAMP(), 'champion'
FROM `acme-netlog.fx_ops.model_registry` WHERE model_name = 'points_cosine'
AND NOT EXISTS (SELECT 1 FROM `acme-netlog.fx_ops.model_registry` WHERE model_name = 'points_cosine' AND run_id = 'compile');
