//! A heartbeat: a thread that renews a lease on a warehouse session of its own while the work
//! that holds the lease goes on, so a run longer than the lease's time to live is never taken
//! for a dead one. It stops when dropped.

use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use netsentinel_core::{EngineError, Warehouse};

/// What one renewal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    Held,
    /// Another holder has the lease now (ours expired and was taken over).
    Lost {
        holder: String,
    },
}

pub struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Who took the lease over, once a renewal found it lost.
    lost_to: Arc<Mutex<Option<String>>>,
}

impl Heartbeat {
    /// Calls `renew` on `session` every `every` until dropped or until the lease is lost. A
    /// renewal that fails (the warehouse is briefly unreachable) is logged and tried again at
    /// the next beat: the lease's time to live is several beats long.
    pub fn start(
        mut session: Box<dyn Warehouse>,
        every: Duration,
        mut renew: impl FnMut(&mut dyn Warehouse) -> Result<Renewal, EngineError> + Send + 'static,
    ) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let lost_to = Arc::new(Mutex::new(None));
        let holder = lost_to.clone();
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match renew(session.as_mut()) {
                    Ok(Renewal::Held) => {}
                    Ok(Renewal::Lost { holder: taker }) => {
                        tracing::error!(holder = %taker, "lease lost to another holder");
                        *holder.lock().unwrap_or_else(|e| e.into_inner()) = Some(taker);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not renew a lease; trying again at the next beat")
                    }
                }
            }
        });
        Heartbeat {
            stop: Some(stop),
            thread: Some(thread),
            lost_to,
        }
    }

    /// The holder that took the lease over, once a renewal found it lost.
    pub fn lost_to(&self) -> Option<String> {
        self.lost_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
