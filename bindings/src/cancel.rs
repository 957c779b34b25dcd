//! Cancellation of one flow from the UI: uniffi has no cancellation of its own, so a flow
//! method takes a [`CancelHandle`] and stops cleanly (dropping its work, closing links)
//! when `cancel()` is called.

use tokio::sync::watch;

/// A handle the UI keeps while a flow runs; `cancel()` makes the flow end with
/// `SunstormError::Cancelled`. One handle may serve several calls; once cancelled it stays
/// cancelled.
#[derive(uniffi::Object)]
pub struct CancelHandle {
    tx: watch::Sender<bool>,
}

impl Default for CancelHandle {
    fn default() -> Self {
        Self { tx: watch::channel(false).0 }
    }
}

#[uniffi::export]
impl CancelHandle {
    /// A fresh, not-cancelled handle.
    #[uniffi::constructor]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every flow using this handle. Idempotent; callable from any thread.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether `cancel()` was called.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }
}

impl CancelHandle {
    /// Resolves once cancelled (immediately if already).
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|c| *c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_wakes_waiters() {
        let h = std::sync::Arc::new(CancelHandle::new());
        assert!(!h.is_cancelled());
        let h2 = h.clone();
        let waiter = tokio::spawn(async move { h2.cancelled().await });
        h.cancel();
        waiter.await.unwrap();
        assert!(h.is_cancelled());
        h.cancelled().await;
    }
}
