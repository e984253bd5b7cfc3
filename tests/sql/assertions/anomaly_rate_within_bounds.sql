{{ config(severity='warn', description='The share of anomalous windows stays near the contamination the threshold was set at.') }}
-- Far more anomalies than the contamination means drift or an attack wave: look before trusting
-- the alerts. Needs enough scored windows for the rate to mean something.
SELECT COUNT(*) AS windows, AVG(IF(is_anomaly, 1.0, 0.0)) AS anomaly_rate
FROM {{ ref("netlog_anomalies") }}
HAVING COUNT(*) >= 100 AND AVG(IF(is_anomaly, 1.0, 0.0)) > 10 * {{ var("contamination") }}
