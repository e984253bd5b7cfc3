# Pub/Sub's service agent: it moves undeliverable ingest messages to the dead-letter topic and
# encrypts with the customer-managed key when one is set.
locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "alerts" {
  name                       = local.pubsub.alerts_topic
  labels                     = local.labels
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.pubsub]
}

# Where alert consumers read; ordered, because netsentinel publishes one subscriber's alerts with
# the subscriber as ordering key (ordering_key: true in pipelines.yaml).
resource "google_pubsub_subscription" "alerts" {
  name                       = local.pubsub.alerts_subscription
  topic                      = google_pubsub_topic.alerts.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  enable_message_ordering    = true

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
}

resource "google_pubsub_topic" "ingest" {
  name                       = local.pubsub.ingest_topic
  labels                     = local.labels
  kms_key_name               = var.kms_key_name
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.pubsub]
}

resource "google_pubsub_topic" "ingest_dead_letter" {
  name                       = local.pubsub.ingest_dead_letter_topic
  labels                     = local.labels
  kms_key_name               = var.kms_key_name
  message_retention_duration = "604800s"

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.pubsub]
}

# netsentinel's ingest subscription: a message that fails five deliveries goes to the dead-letter
# topic instead of blocking the stream.
resource "google_pubsub_subscription" "ingest" {
  name                       = local.pubsub.ingest_subscription
  topic                      = google_pubsub_topic.ingest.id
  labels                     = local.labels
  ack_deadline_seconds       = 120
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.ingest_dead_letter.id
    max_delivery_attempts = 5
  }
}

# A topic without subscriptions drops what is published to it: this one keeps dead letters for a
# week, for inspection and replay.
resource "google_pubsub_subscription" "ingest_dead_letter" {
  name                       = local.pubsub.ingest_dead_letter_holder
  topic                      = google_pubsub_topic.ingest_dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.ingest_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  subscription = google_pubsub_subscription.ingest.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_kms_crypto_key_iam_member" "pubsub" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.pubsub_service_agent
}
