//! The structured event recorder (`event_recorder:`, active with
//! `--enable-feature=event-recorder`), as Alertmanager's `eventrecorder`
//! package: alerts received, grouped and resolved, notifications sent,
//! silences created and updated, start and stop, written as JSON lines to
//! files and stdout and POSTed to webhooks.
//!
//! Recording never waits: an event goes into a bounded queue (dropped and
//! counted when it is full) that one writer thread empties, so the file
//! writes are off the async runtime. The webhook outputs deliver from tokio
//! tasks. Like the tracer provider the recorder is process-wide: the places
//! that record (API, dispatcher, retry stage) are many, and the recorder,
//! like Alertmanager's, is one per process.

mod config;
pub(crate) mod events;
mod metrics;
mod outputs;

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

pub use config::{EventRecorderConfig, FileOutputConfig, StdoutOutputConfig, WebhookOutputConfig};
pub(crate) use events::EventData;
pub(crate) use metrics::render_metrics;

use metrics::EventMetrics;
use outputs::Output;

/// Alertmanager's `eventQueueSize`.
const EVENT_QUEUE_SIZE: usize = 8192;

enum Msg {
    Event { kind: &'static str, line: Vec<u8> },
    Config(EventRecorderConfig, SyncSender<()>),
}

struct Inner {
    tx: SyncSender<Msg>,
    instance: String,
    metrics: Arc<EventMetrics>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static RECORDER: ArcSwapOption<Inner> = ArcSwapOption::const_empty();

/// Records an event if the recorder is running; `build` is only called
/// then, so a disabled recorder costs one atomic load.
pub(crate) fn record(build: impl FnOnce() -> EventData) {
    let guard = RECORDER.load();
    let Some(inner) = guard.as_ref() else {
        return;
    };
    let data = build();
    let now = jiff::Timestamp::now();
    let event = events::envelope(&data, &inner.instance, now, cluster_position());
    let line = match serde_json::to_vec(&event) {
        Ok(l) => l,
        Err(_) => {
            inner.metrics.serialize_error(data.kind);
            return;
        }
    };
    match inner.tx.try_send(Msg::Event {
        kind: data.kind,
        line,
    }) {
        Ok(()) => inner.metrics.queued(1),
        Err(TrySendError::Full(_)) => inner.metrics.dropped(data.kind),
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// What a notification event says about the flush it came from, which
/// the notify stages do not carry themselves: set by the dispatcher around
/// a flush, read by the retry stage on the same task.
#[derive(Clone)]
pub(crate) struct FlushInfo {
    pub(crate) group_uuid: Arc<str>,
    pub(crate) flush_id: u64,
    /// The route's matchers (`AlertGroupInfo.matchers`).
    pub(crate) matchers: Vec<crate::matcher::Matcher>,
}

tokio::task_local! {
    static FLUSH: Option<FlushInfo>;
}

/// Runs a flush with `info` visible to [`flush_info`].
pub(crate) async fn in_flush<F: std::future::Future>(info: Option<FlushInfo>, f: F) -> F::Output {
    FLUSH.scope(info, f).await
}

pub(crate) fn flush_info() -> Option<FlushInfo> {
    FLUSH.try_with(|i| i.clone()).ok().flatten()
}

/// Whether events are being recorded (to skip work that only feeds them).
pub(crate) fn active() -> bool {
    RECORDER.load().is_some()
}

/// This node's position in the cluster, as Alertmanager's
/// `peer.Position()`; Herald's clustering does not expose one yet, so a
/// single node's 0 (left out of the JSON).
fn cluster_position() -> u32 {
    0
}

/// The machine's host name, Alertmanager's `instance` field.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Starts the recorder with the outputs of `cfg` and records the startup
/// event. Must be called inside the tokio runtime (the webhook outputs
/// spawn their workers on it).
pub fn start(cfg: &EventRecorderConfig) {
    let metrics = Arc::new(EventMetrics::default());
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = sync_channel(EVENT_QUEUE_SIZE);
    let outs = outputs::build(cfg, &metrics, &handle);
    let writer = {
        let metrics = metrics.clone();
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name("event-recorder".into())
            .spawn(move || write_loop(rx, outs, cfg, metrics, handle))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(err = %e, "Failed to start the event recorder");
            return;
        }
    };
    metrics::install(metrics.clone());
    RECORDER.store(Some(Arc::new(Inner {
        tx,
        instance: hostname(),
        metrics,
        writer: Mutex::new(Some(writer)),
    })));
    record(events::startup);
}

/// Hands a reloaded config to the writer; it keeps its outputs when the
/// block is unchanged, and keeps the old ones when a new one fails to open
/// (`writeLoop`). Blocks until the writer has switched, so it runs off the
/// async runtime.
pub fn apply(cfg: &EventRecorderConfig) {
    let guard = RECORDER.load();
    let Some(inner) = guard.as_ref() else {
        return;
    };
    let (ack_tx, ack_rx) = sync_channel(1);
    if inner.tx.send(Msg::Config(cfg.clone(), ack_tx)).is_ok() {
        let _ = ack_rx.recv();
    }
}

/// Records the shutdown event, then lets the writer write what is queued,
/// close its outputs (webhooks get up to 30 s to deliver) and end. Blocks.
pub fn stop() {
    record(events::shutdown);
    let Some(inner) = RECORDER.swap(None) else {
        return;
    };
    let writer = inner
        .writer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    // The writer ends once every sender is gone: this one, and any still
    // held by a `record` in flight.
    drop(inner);
    if let Some(w) = writer {
        let _ = w.join();
    }
}

fn write_loop(
    rx: Receiver<Msg>,
    mut outs: Vec<Box<dyn Output>>,
    mut current: EventRecorderConfig,
    metrics: Arc<EventMetrics>,
    handle: tokio::runtime::Handle,
) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Event { kind, line } => {
                metrics.queued(-1);
                for out in outs.iter_mut() {
                    match out.send(&line) {
                        Ok(n) => metrics.recorded(kind, out.name(), true, n),
                        Err(e) => {
                            metrics.recorded(kind, out.name(), false, 0);
                            tracing::error!(event_type = kind, output = %out.name(), err = %e, "Failed to write event");
                        }
                    }
                }
            }
            Msg::Config(cfg, ack) => {
                if cfg != current {
                    let new = outputs::build(&cfg, &metrics, &handle);
                    if new.len() != cfg.total_outputs() {
                        tracing::error!(
                            "Failed to reload event recorder outputs; keeping existing outputs"
                        );
                        for o in new {
                            o.close();
                        }
                    } else {
                        for o in std::mem::replace(&mut outs, new) {
                            o.close();
                        }
                        current = cfg;
                        tracing::info!(
                            outputs = outs.len(),
                            "Event recorder configuration reloaded"
                        );
                    }
                }
                let _ = ack.send(());
            }
        }
    }
    for o in outs {
        o.close();
    }
}
