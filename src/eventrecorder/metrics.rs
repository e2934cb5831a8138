//! The recorder's metrics, with Alertmanager's names
//! (`eventrecorder/metrics.go`). They exist only while the recorder runs,
//! as in Alertmanager, which registers them only with the feature on.

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub(crate) struct EventMetrics {
    registry: Registry,
    recorded: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    serialize_errors: Family<Labels, Counter>,
    pub(crate) output_drops: Family<Labels, Counter>,
    queue: Gauge<i64, AtomicI64>,
}

impl Default for EventMetrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let m = EventMetrics {
            registry: Registry::default(),
            recorded: Family::default(),
            bytes: Family::default(),
            dropped: Family::default(),
            serialize_errors: Family::default(),
            output_drops: Family::default(),
            queue: Gauge::default(),
        };
        r.register(
            "alertmanager_events_recorded",
            "The total number of events recorded by the event recorder.",
            m.recorded.clone(),
        );
        r.register(
            "alertmanager_event_recorder_bytes_written",
            "The total number of bytes written to the event recorder.",
            m.bytes.clone(),
        );
        r.register(
            "alertmanager_events_dropped",
            "The total number of events dropped due to a full queue.",
            m.dropped.clone(),
        );
        r.register(
            "alertmanager_event_serialize_errors",
            "The total number of events that failed to serialize.",
            m.serialize_errors.clone(),
        );
        r.register(
            "alertmanager_event_output_drops",
            "The total number of events dropped by an output due to a full local buffer.",
            m.output_drops.clone(),
        );
        r.register(
            "alertmanager_event_recorder_queue_length",
            "Current number of events waiting in the event recorder write queue.",
            m.queue.clone(),
        );
        EventMetrics { registry: r, ..m }
    }
}

impl EventMetrics {
    pub(crate) fn recorded(&self, kind: &str, output: &str, ok: bool, bytes: usize) {
        let result = if ok { "success" } else { "error" };
        self.recorded
            .get_or_create(&vec![
                ("event_type", kind.to_string()),
                ("output", output.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
        if ok {
            self.bytes
                .get_or_create(&vec![
                    ("event_type", kind.to_string()),
                    ("output", output.to_string()),
                ])
                .inc_by(bytes as u64);
        }
    }

    pub(crate) fn dropped(&self, kind: &str) {
        self.dropped
            .get_or_create(&vec![("event_type", kind.to_string())])
            .inc();
    }

    pub(crate) fn serialize_error(&self, kind: &str) {
        self.serialize_errors
            .get_or_create(&vec![("event_type", kind.to_string())])
            .inc();
    }

    pub(crate) fn output_drop(&self, output: &str) {
        self.output_drops
            .get_or_create(&vec![("output", output.to_string())])
            .inc();
    }

    pub(crate) fn queued(&self, n: i64) {
        self.queue.inc_by(n);
    }
}

/// Set once, when the recorder first starts: the counters then live on
/// like Alertmanager's registered collectors.
static INSTALLED: OnceLock<Arc<EventMetrics>> = OnceLock::new();

pub(super) fn install(m: Arc<EventMetrics>) {
    let _ = INSTALLED.set(m);
}

/// The recorder's exposition text (without `# EOF`), for `/metrics`.
pub(crate) fn render_metrics() -> Option<String> {
    let m = INSTALLED.get()?;
    let mut out = String::new();
    encode(&mut out, &m.registry).ok()?;
    if let Some(pos) = out.rfind("# EOF") {
        out.truncate(pos);
    }
    Some(out)
}
