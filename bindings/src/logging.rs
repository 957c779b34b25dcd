//! `tracing` events to the platform's [`LogSink`].
//!
//! One process-wide subscriber is installed the first time [`set_log_sink`] is called;
//! later calls swap the sink or the level. Records carry the level, the target (Rust
//! module) and the message with its fields; the core never puts secrets in fields.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::error::SunstormError;
use crate::platform::{LogLevel, LogRecord, LogSink};

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
/// 0 = off, 1 = error … 5 = trace.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// Set while a record is being handed to the sink, so a sink that logs (or calls into
    /// the core) cannot recurse forever.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    }
}

fn to_log_level(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        Level::TRACE => LogLevel::Trace,
    }
}

/// Collects an event's message and fields into one line.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

/// The layer forwarding events to the registered sink.
struct SinkLayer;

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn register_callsite(&self, _m: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // The level can change at run time: decide per event, not once per callsite.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if IN_SINK.with(|f| f.get()) {
            return;
        }
        let Some(sink) = SINK.read().ok().and_then(|s| s.clone()) else { return };
        let mut line = Line::default();
        event.record(&mut line);
        let meta = event.metadata();
        let record = LogRecord {
            level: to_log_level(meta.level()),
            target: meta.target().to_string(),
            message: format!("{}{}", line.message, line.fields),
        };
        IN_SINK.with(|f| f.set(true));
        // A failing sink must never break the core; there is nowhere else to report it.
        let _ = sink.log(record);
        IN_SINK.with(|f| f.set(false));
    }
}

/// Reports panics (which the FFI turns into errors) to the log sink too, so the app's logs
/// say where it happened; the previous hook still runs.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(target: "sunstorm_ffi::panic", %location, "panic: {payload}");
        previous(info);
    }));
}

/// Sends the core's logs at `max_level` and above to `sink` (replacing any previous sink).
/// Call once at app start, before creating the core. The sink is held until
/// [`clear_log_sink`]; it must not hold a reference to the core object (that would be a
/// cycle across the FFI).
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, max_level: LogLevel) -> Result<(), SunstormError> {
    {
        let mut slot = SINK.write().map_err(|_| SunstormError::internal("log sink lock poisoned"))?;
        *slot = Some(sink);
    }
    MAX_LEVEL.store(level_rank(max_level), Ordering::Relaxed);
    let installed = *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(SinkLayer);
        let ok = tracing::subscriber::set_global_default(subscriber).is_ok();
        if ok {
            install_panic_hook();
        }
        ok
    });
    if !installed {
        return Err(SunstormError::internal("another tracing subscriber is already installed in this process"));
    }
    tracing::callsite::rebuild_interest_cache();
    tracing::debug!(target: "sunstorm_ffi::logging", level = ?max_level, "log sink registered");
    Ok(())
}

/// Stops forwarding logs and releases the sink.
#[uniffi::export]
pub fn clear_log_sink() -> Result<(), SunstormError> {
    MAX_LEVEL.store(0, Ordering::Relaxed);
    let mut slot = SINK.write().map_err(|_| SunstormError::internal("log sink lock poisoned"))?;
    *slot = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CallbackError;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<LogRecord>>);
    impl LogSink for Collect {
        fn log(&self, record: LogRecord) -> Result<(), CallbackError> {
            // A sink that logs must not recurse.
            tracing::error!("from inside the sink");
            self.0.lock().unwrap().push(record);
            Ok(())
        }
    }

    #[test]
    fn events_reach_the_sink_with_level_and_target() {
        let sink = Arc::new(Collect::default());
        set_log_sink(sink.clone(), LogLevel::Info).unwrap();
        tracing::info!(target: "sunstorm_core::pair", session = "abc", "fetched session");
        tracing::debug!(target: "sunstorm_core::pair", "too detailed");
        let got = sink.0.lock().unwrap().clone();
        let rec = got.iter().find(|r| r.target == "sunstorm_core::pair").unwrap();
        assert_eq!(rec.level, LogLevel::Info);
        assert_eq!(rec.message, "fetched session session=abc");
        assert!(!got.iter().any(|r| r.message.contains("too detailed")));
        assert!(!got.iter().any(|r| r.message.contains("inside the sink")));
        clear_log_sink().unwrap();
        tracing::error!(target: "sunstorm_core::pair", "after clear");
        assert!(!sink.0.lock().unwrap().iter().any(|r| r.message.contains("after clear")));
    }
}
