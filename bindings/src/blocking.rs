//! Blocking platform calls (BLE, HTTP, presence and approval-key prompts) run on tokio's
//! blocking pool through one non-generic task: the pool's task machinery exists once in
//! the library instead of once per call site (size budget, docs/building.md).

/// Runs `f` on the blocking pool and answers what it returned; `Err` (the reason, for a
/// specific error of the caller's) when it panicked or the runtime is shutting down.
pub(crate) async fn on_blocking_pool<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    run_boxed(Box::new(move || {
        // The receiver only goes away with a caller that stopped waiting.
        let _ = tx.send(f());
    }))
    .await?;
    rx.await.map_err(|_| "the blocking call ended without its answer".to_string())
}

async fn run_boxed(job: Box<dyn FnOnce() + Send>) -> Result<(), String> {
    tokio::task::spawn_blocking(job).await.map_err(|e| e.to_string())
}
