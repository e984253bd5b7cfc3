# Copy to terraform.tfvars (ignored by git) and fill in.
project_id               = "my-netsentinel-prod"
region                   = "us-central1"
bigquery_location        = "US"
environment              = "prod"
alert_notification_email = "secops@example.com"
runner_image             = "us-central1-docker.pkg.dev/my-netsentinel-prod/netsentinel-prod/netsentinel:v0.1.0"
# kms_key_name           = "projects/my-kms/locations/us/keyRings/netsentinel/cryptoKeys/data"
