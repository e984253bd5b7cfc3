//! Where continuous ingest reads from, each on a thread of its own feeding [`Receipt`]s to the
//! committer: standard input (its end ends the ingest) and a Pub/Sub subscription (each
//! message acked only after its rows are committed, nacked when they could not be). Both wait
//! for room in the input budget before reading on. `POST /v1/events` is served by
//! [`crate::service`].

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::Duration;

use google_cloud_pubsub::client::Subscriber;

use super::budget::ByteBudget;
use super::follow::Receipt;
use crate::pubsub;

/// Reads NDJSON from standard input until it ends (or the budget closes); dropping the sender
/// tells the committer. Each line is its own receipt, so a slow producer's lines are committed
/// within the commit interval instead of waiting for a buffer to fill.
pub fn stdin(receipts: SyncSender<Receipt>, budget: ByteBudget) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "cannot read standard input; reading no more of it");
                    break;
                }
            }
            let Some(held) = budget.hold(line.len()) else {
                break;
            };
            // A line that is not UTF-8 is decoded lossily, as a Pub/Sub message is: it becomes
            // a reject, or an event with U+FFFD in a text field, never the end of the input.
            let body = String::from_utf8_lossy(&line).into_owned();
            let receipt = Receipt::unacknowledged("<stdin>", number, body, held);
            if receipts.send(receipt).is_err() {
                break;
            }
        }
    })
}

/// Pulls `subscription` (`projects/P/subscriptions/S`) until `stop` is set, then waits for
/// the messages it handed over to be settled. Messages are NDJSON; a message is acked once its
/// rows are committed, so one that was received and not committed before a crash is delivered
/// again (and its events stored once).
pub fn pubsub(
    subscription: String,
    receipts: SyncSender<Receipt>,
    budget: ByteBudget,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Pub/Sub runtime: {e}"))?;
        runtime.block_on(pull(subscription, receipts, budget, stop))
    })
}

const REDELIVERY_AFTER_CRASH: Duration = Duration::from_secs(10);

async fn pull(
    subscription: String,
    receipts: SyncSender<Receipt>,
    budget: ByteBudget,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut builder = Subscriber::builder();
    if let Some(endpoint) = pubsub::emulator_endpoint() {
        builder = builder
            .with_endpoint(endpoint)
            .with_credentials(pubsub::anonymous_credentials());
    }
    let client = builder
        .build()
        .await
        .map_err(|e| format!("cannot create a Pub/Sub subscriber: {e}"))?;
    // Messages held by an ingester that crashed come back after this lease; the client extends
    // it while a commit is pending, so the shortest one Pub/Sub allows only shortens recovery
    // (the SDK's default is 60 s of alerts held back after a crash).
    let mut stream = client
        .subscribe(subscription.clone())
        .set_max_lease_extension(REDELIVERY_AFTER_CRASH)
        .build();
    tracing::info!(%subscription, "pulling");
    // Only the stop branch may cancel a pending `next()`: the stream is set up lazily by the
    // first call, and cancelling that call over and over would never let it finish.
    let stopped = async {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::pin!(stopped);
    loop {
        let next = tokio::select! {
            _ = &mut stopped => break,
            next = stream.next() => next,
        };
        let (message, handler) = match next {
            None => break,
            Some(Err(error)) => return Err(format!("pulling {subscription} failed: {error}")),
            Some(Ok(received)) => received,
        };
        // Waiting here (off the async workers' hot path) is the back-pressure that keeps
        // unacked messages with Pub/Sub instead of in memory. A message dropped unsent is
        // nacked.
        let Some(held) = tokio::task::block_in_place(|| budget.hold(message.data.len())) else {
            break;
        };
        let receipt = Receipt {
            source: format!("pubsub:{}", message.message_id),
            first_line: 1,
            body: String::from_utf8_lossy(&message.data).into_owned(),
            acknowledge: Box::new(move |committed| match committed {
                Ok(_) => handler.ack(),
                Err(_) => handler.nack(),
            }),
            held,
        };
        if tokio::task::block_in_place(|| receipts.send(receipt)).is_err() {
            break;
        }
    }
    // Waits until every message handed over is acked or nacked (the committer's last commit)
    // and those acks are sent.
    stream.shutdown_token().shutdown().await;
    Ok(())
}
