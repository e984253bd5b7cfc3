resource "google_artifact_registry_repository" "runner" {
  location      = var.region
  repository_id = "netsentinel-${var.environment}"
  description   = "netsentinel runner images (Dockerfile at the repository root)."
  format        = "DOCKER"
  labels        = local.labels
  kms_key_name  = var.kms_key_name

  # A tag always names the same image, so a job definition always runs what was reviewed.
  docker_config {
    immutable_tags = true
  }

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.artifact_registry]
}

resource "google_kms_crypto_key_iam_member" "artifact_registry" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
}

# One job per scheduled pipeline, running `netsentinel run PIPELINE` against the bigquery target.
resource "google_cloud_run_v2_job" "pipeline" {
  for_each = local.pipelines

  name                = "netsentinel-${each.key}-${var.environment}"
  location            = var.region
  labels              = merge(local.labels, { pipeline = each.key })
  deletion_protection = false

  template {
    task_count  = 1
    parallelism = 1
    labels      = merge(local.labels, { pipeline = each.key })

    template {
      service_account = google_service_account.runner.email
      timeout         = each.value.timeout
      # A failed run is resumed by the pipeline's next scheduled run (steps it finished are
      # skipped), so the job itself does not retry.
      max_retries = 0

      containers {
        image = var.runner_image
        args  = ["run", each.key, "--target", local.netsentinel_target, "--log-format", "json"]

        dynamic "env" {
          for_each = local.netsentinel_env
          content {
            name  = env.key
            value = env.value
          }
        }

        resources {
          limits = {
            cpu    = "1"
            memory = "1Gi"
          }
        }
      }
    }
  }

  depends_on = [google_project_service.required]
}

# Fires each pipeline on its pipelines.yaml schedule. The Cloud Run Admin API is a Google API, which
# takes OAuth access tokens (OIDC tokens are for calling Cloud Run services' own URLs).
resource "google_cloud_scheduler_job" "pipeline" {
  for_each = local.pipelines

  name             = "netsentinel-${each.key}-${var.environment}"
  description      = "Runs the netsentinel ${each.key} pipeline (${var.environment})."
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count          = 1
    min_backoff_duration = "30s"
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/${google_cloud_run_v2_job.pipeline[each.key].id}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_invoker]
}
