CREATE OR REPLACE VIEW `acme-netlog.netlog_features.netlog_training_set` AS
-- The rows the model trains on: the feature windows of the last `training_lookback_minutes`
-- (after a drift, a retrain learns today's traffic, not all history), each flagged `holdout`
-- when its window period is one of every `holdout_every`. The model trains on the other rows;
-- the promotion gate compares a new version with the champion on the holdout rows. Whole
-- window periods are held out, not random rows: the split needs no hash function (one both
-- engines compute identically), and a held-out minute shares no window with training.
-- Windows entity_alert_threshold spreads above their own entity's baseline are left out:
-- real training data holds attacks, and a burst of alike attack windows would otherwise
-- become a cluster of its own, that is, normal.
SELECT
  *,
  MOD(DIV(UNIX_SECONDS(window_start), 60), 5) = 0 AS holdout
FROM `acme-netlog.netlog_features.netlog_model_inputs`
WHERE COALESCE(entity_deviation, 0) < 6.0
  AND window_start >= (
  SELECT TIMESTAMP_SUB(MAX(window_start), INTERVAL 10080 MINUTE)
  FROM `acme-netlog.netlog_features.netlog_model_inputs`
);
