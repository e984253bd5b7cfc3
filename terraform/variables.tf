variable "project_id" {
  description = "Google Cloud project that holds the environment; netsentinel reads it as GCP_PROJECT."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run jobs, Cloud Scheduler jobs and the Artifact Registry repository."
  type        = string
  default     = "us-central1"
}

variable "bigquery_location" {
  description = "BigQuery location of the datasets. Must equal `location` of the bigquery target in pipelines.yaml, where netsentinel runs its jobs (the consistency test checks the default)."
  type        = string
  default     = "US"
}

variable "environment" {
  description = "Short environment name (dev, prod…): a label on every resource and a suffix on the deployment's own resource names. Data names (datasets, topics) are the ones pipelines.yaml spells, so run one environment per project."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.environment))
    error_message = "environment must be 1-12 characters: lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "alert_notification_email" {
  description = "Email address Cloud Monitoring notifies when alerts are published and when a scheduled run fails."
  type        = string
}

variable "runner_image" {
  description = "Container image of netsentinel (see Dockerfile), e.g. REGION-docker.pkg.dev/PROJECT/netsentinel-ENV/netsentinel:TAG."
  type        = string
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/…/locations/…/keyRings/…/cryptoKeys/…) for customer-managed encryption of datasets, tables, topics and the image repository. null keeps Google-managed encryption."
  type        = string
  default     = null
}

variable "raw_retention_days" {
  description = "Days a partition of the raw tables is kept. null keeps raw events forever."
  type        = number
  default     = 90
}

variable "derived_retention_days" {
  description = "Days a partition of the features and inferenced tables is kept. Training reads all feature windows still kept, so this also bounds the training data."
  type        = number
  default     = 400
}
