//! Settings shared by netsentinel's Pub/Sub clients (the alert sink's publisher, the ingest
//! source's subscriber). The official client does not read `PUBSUB_EMULATOR_HOST`; when it is
//! set, both point at the emulator with anonymous credentials (without them every call waits
//! for a token).

use google_cloud_auth::credentials::Credentials;

pub const EMULATOR_HOST_VAR: &str = "PUBSUB_EMULATOR_HOST";

/// `http://HOST:PORT` of the emulator named by `PUBSUB_EMULATOR_HOST`, if set.
pub fn emulator_endpoint() -> Option<String> {
    std::env::var(EMULATOR_HOST_VAR)
        .ok()
        .filter(|host| !host.trim().is_empty())
        .map(|host| {
            if host.starts_with("http://") || host.starts_with("https://") {
                host
            } else {
                format!("http://{host}")
            }
        })
}

pub fn anonymous_credentials() -> Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}
