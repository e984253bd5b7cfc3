resource "google_monitoring_notification_channel" "email" {
  display_name = "netsentinel ${var.environment} on-call"
  type         = "email"
  labels = {
    email_address = var.alert_notification_email
  }
  user_labels = local.labels

  depends_on = [google_project_service.required]
}

# netsentinel published anomaly alerts: someone should look at the alerts subscription.
resource "google_monitoring_alert_policy" "alerts_published" {
  display_name          = "netsentinel ${var.environment}: anomaly alerts published"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Messages published to ${google_pubsub_topic.alerts.name}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_topic\" AND resource.labels.topic_id = \"${google_pubsub_topic.alerts.name}\" AND metric.type = \"pubsub.googleapis.com/topic/send_message_operation_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "netsentinel published anomaly alerts to `${google_pubsub_topic.alerts.id}`. Read them from the `${google_pubsub_subscription.alerts.name}` subscription, or from `${local.datasets.ops}.alert_outbox` in BigQuery."
  }
}

# A scheduled run failed (a step failed, a timeout, or the container could not start).
resource "google_monitoring_alert_policy" "run_failed" {
  display_name          = "netsentinel ${var.environment}: pipeline run failed"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Failed executions of the netsentinel Cloud Run jobs"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = one_of(${join(", ", [for job in google_cloud_run_v2_job.pipeline : "\"${job.name}\""])}) AND metric.type = \"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result = \"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A netsentinel run failed. Its logs are in Cloud Logging (resource type cloud_run_job); `${local.datasets.ops}.runs` and `${local.datasets.ops}.step_runs` record the failing step and its error. The next scheduled run resumes it."
  }
}
