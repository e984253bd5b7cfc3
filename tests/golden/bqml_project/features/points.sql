CREATE OR REPLACE TABLE `acme-netlog.fx_features.points` AS
-- Two groups of points with a categorical column, a NULL in each kind of column, and one seed row
-- per group for CUSTOM initialization.
SELECT 0.0 AS x, 1 AS y, 'a' AS kind, TRUE AS seed
UNION ALL SELECT 1.0, 2, 'a', FALSE
UNION ALL SELECT 2.0, NULL, 'a', FALSE
UNION ALL SELECT 0.5, 1, NULL, FALSE
UNION ALL SELECT 10.0, 11, 'b', TRUE
UNION ALL SELECT 11.0, 12, 'b', FALSE
UNION ALL SELECT NULL, 10, 'c', FALSE
UNION ALL SELECT 12.5, 13, 'b', FALSE;
