# Two identities, each with only what it uses (README, "IAM roles"): the runner that netsentinel
# runs as, and the scheduler identity that may start the runner's jobs and nothing else.

resource "google_service_account" "runner" {
  account_id   = "netsentinel-runner-${var.environment}"
  display_name = "netsentinel runner (${var.environment})"
  description  = "Runs netsentinel pipelines: BigQuery jobs on its datasets, alert publishing, Pub/Sub ingest."
}

resource "google_service_account" "scheduler" {
  account_id   = "netsentinel-sched-${var.environment}"
  display_name = "netsentinel scheduler (${var.environment})"
  description  = "Cloud Scheduler's identity: starts the netsentinel Cloud Run jobs."
}

# Query and load jobs are billed and run at project level; this role grants no data access.
resource "google_project_iam_member" "runner_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.runner.member
}

# Reads and writes tables, views and models in netsentinel's datasets only.
resource "google_bigquery_dataset_iam_member" "runner_data_editor" {
  for_each = google_bigquery_dataset.netsentinel

  project    = var.project_id
  dataset_id = each.value.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.runner.member
}

resource "google_pubsub_topic_iam_member" "runner_alerts_publisher" {
  topic  = google_pubsub_topic.alerts.id
  role   = "roles/pubsub.publisher"
  member = google_service_account.runner.member
}

resource "google_pubsub_subscription_iam_member" "runner_ingest_subscriber" {
  subscription = google_pubsub_subscription.ingest.id
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.runner.member
}

# Starting a job as it is defined; overriding its arguments would need roles/run.developer, which
# could also change the job's image or identity. Hence one Cloud Run job per pipeline.
resource "google_cloud_run_v2_job_iam_member" "scheduler_invoker" {
  for_each = google_cloud_run_v2_job.pipeline

  project  = var.project_id
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}
