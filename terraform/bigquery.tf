resource "google_bigquery_dataset" "netsentinel" {
  for_each = local.datasets

  project     = var.project_id
  dataset_id  = each.value
  location    = var.bigquery_location
  description = "netsentinel ${each.key} dataset (${var.environment})."
  labels      = merge(local.labels, { dataset = each.key })

  default_partition_expiration_ms = lookup(local.partition_expiration_days, each.key, null) == null ? null : local.partition_expiration_days[each.key] * 86400000

  # Data outlives a `terraform destroy`: a dataset that still holds tables is not deleted.
  delete_contents_on_destroy = false

  dynamic "default_encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.bigquery]
}

resource "google_bigquery_table" "netsentinel" {
  for_each = local.tables

  project     = var.project_id
  dataset_id  = google_bigquery_dataset.netsentinel[each.value.dataset].dataset_id
  table_id    = each.value.name
  description = each.value.description
  labels      = merge(local.labels, { dataset = each.value.dataset })

  # These tables hold the events, the scores and the alert history: terraform never drops them.
  deletion_protection = true

  schema = jsonencode([
    for column in each.value.columns : { name = column[0], type = column[1], mode = "NULLABLE" }
  ])

  dynamic "time_partitioning" {
    for_each = each.value.partition_field == null ? [] : [each.value.partition_field]
    content {
      type          = "DAY"
      field         = time_partitioning.value
      expiration_ms = lookup(local.partition_expiration_days, each.value.dataset, null) == null ? null : local.partition_expiration_days[each.value.dataset] * 86400000
    }
  }

  clustering = length(each.value.clustering) == 0 ? null : each.value.clustering

  dynamic "encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }
}

# With a customer-managed key, BigQuery's service account encrypts with it.
data "google_bigquery_default_service_account" "this" {
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "bigquery" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_bigquery_default_service_account.this.email}"
}
