output "netsentinel_env" {
  description = "Environment variables of the runner (every ${VAR} of pipelines.yaml): `netsentinel env --from-terraform` prints them as exports."
  value       = local.netsentinel_env
}

output "project_id" {
  description = "Project of the bigquery target (GCP_PROJECT)."
  value       = var.project_id
}

output "region" {
  description = "Region of the Cloud Run and Cloud Scheduler jobs."
  value       = var.region
}

output "bigquery_location" {
  description = "Location of the datasets (targets.bigquery.location in pipelines.yaml)."
  value       = var.bigquery_location
}

output "datasets" {
  description = "Logical dataset => BigQuery dataset (targets.bigquery.datasets in pipelines.yaml)."
  value       = { for key, dataset in google_bigquery_dataset.netsentinel : key => dataset.dataset_id }
}

output "alerts_topic" {
  description = "Topic of the pubsub alert sink."
  value       = google_pubsub_topic.alerts.id
}

output "alerts_subscription" {
  description = "Subscription alert consumers read from."
  value       = google_pubsub_subscription.alerts.id
}

output "ingest_topic" {
  description = "Topic producers publish netlog events to."
  value       = google_pubsub_topic.ingest.id
}

output "ingest_subscription" {
  description = "Subscription netsentinel ingests from."
  value       = google_pubsub_subscription.ingest.id
}

output "ingest_dead_letter_subscription" {
  description = "Holds ingest messages that failed five deliveries."
  value       = google_pubsub_subscription.ingest_dead_letter.id
}

output "runner_service_account" {
  description = "Identity netsentinel runs as."
  value       = google_service_account.runner.email
}

output "image_repository" {
  description = "Artifact Registry path to push the runner image to."
  value       = "${google_artifact_registry_repository.runner.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.runner.repository_id}"
}

output "cloud_run_jobs" {
  description = "Pipeline => Cloud Run job running it."
  value       = { for pipeline, job in google_cloud_run_v2_job.pipeline : pipeline => job.name }
}

output "scheduler_jobs" {
  description = "Pipeline => Cloud Scheduler job firing it."
  value       = { for pipeline, job in google_cloud_scheduler_job.pipeline : pipeline => job.name }
}
