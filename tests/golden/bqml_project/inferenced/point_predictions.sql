CREATE OR REPLACE TABLE `acme-netlog.fx_inferenced.point_predictions` AS
SELECT p.centroid_id, p.nearest_centroids_distance[OFFSET(0)].distance AS distance, p.x, p.kind
FROM ML.PREDICT(MODEL `acme-netlog.fx_models.points_kmeans`, TABLE `acme-netlog.fx_features.points`) AS p;
