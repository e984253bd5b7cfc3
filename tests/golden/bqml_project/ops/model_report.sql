CREATE OR REPLACE TABLE `acme-netlog.fx_ops.model_report` AS
-- One row per model: how it trained and how well it separates the points.
WITH evaluation AS (
  SELECT davies_bouldin_index, mean_squared_distance
  FROM ML.EVALUATE(MODEL `acme-netlog.fx_models.points_kmeans`, TABLE `acme-netlog.fx_features.points`)
),
training AS (
  SELECT COUNT(*) AS iterations, MIN(loss) AS final_loss
  FROM ML.TRAINING_INFO(MODEL `acme-netlog.fx_models.points_kmeans`)
),
features AS (
  SELECT COUNTIF(category_count IS NOT NULL) AS categorical_features, SUM(null_count) AS nulls
  FROM ML.FEATURE_INFO(MODEL `acme-netlog.fx_models.points_kmeans`)
),
centroids AS (
  SELECT MAX(ABS(numerical_value)) AS largest_standardized_coordinate
  FROM ML.CENTROIDS(MODEL `acme-netlog.fx_models.points_kmeans`, STRUCT(TRUE AS standardize))
),
cosine AS (
  SELECT mean_squared_distance AS cosine_training_msd FROM ML.EVALUATE(MODEL `acme-netlog.fx_models.points_cosine`)
)
SELECT * FROM evaluation, training, features, centroids, cosine;
