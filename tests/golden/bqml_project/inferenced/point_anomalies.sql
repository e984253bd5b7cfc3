CREATE OR REPLACE TABLE `acme-netlog.fx_inferenced.point_anomalies` AS
SELECT is_anomaly, normalized_distance, centroid_id, x, y, kind
FROM ML.DETECT_ANOMALIES(
  MODEL `acme-netlog.fx_models.points_kmeans`,
  STRUCT(0.1 AS contamination),
  (SELECT x, y, kind FROM `acme-netlog.fx_features.points` UNION ALL SELECT 100.0, 100, 'z')
);
