//! One way the HTTP simulators (octane, the push gateway) serve: an axum router on a bound
//! loopback listener in a background task, stopped gracefully on request (in-flight
//! requests get ≤ 1 s), on Ctrl-C, or aborted when the handle is dropped.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long in-flight requests (long-polls) may take to finish on a graceful stop.
const GRACE: Duration = Duration::from_secs(1);

/// A running server task. Dropping it aborts the server.
#[derive(Debug)]
pub(crate) struct ServerTask {
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Serves `app` on `listener` in a background task; `name` says which server in logs.
    pub(crate) fn spawn(listener: TcpListener, app: Router, name: &'static str) -> Self {
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, server = name, "simulator stopped");
            }
        });
        Self { shutdown: Some(tx), join: Some(join) }
    }

    /// Serves until Ctrl-C (or the server fails), then stops.
    pub(crate) async fn run_until_ctrl_c(&mut self) {
        if let Some(mut join) = self.join.take() {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = &mut join => { return; }
            }
            self.join = Some(join);
        }
        self.stop().await;
    }

    /// Stops accepting connections and ends the server.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(join) = self.join.take() {
            let abort = join.abort_handle();
            if tokio::time::timeout(GRACE, join).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(join) = self.join.take() {
            join.abort();
        }
    }
}
