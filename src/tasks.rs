//! Herald's background tasks (`Tasks`): every task is spawned through one
//! tracker so that a stop can wait for all of them, and a panic in any of
//! them is logged under the task's name instead of vanishing with a
//! dropped `JoinHandle`.
//!
//! A stop runs in this order (`main.rs`): stop accepting and stop the group
//! timers (the shutdown token), let the flushes in flight finish within
//! [`SHUTDOWN_GRACE`] (`drain_flushes`), cancel what is left, leave the
//! cluster, then wait for the rest (`stop`) and write the storage barrier.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a stop (SIGTERM, SIGINT) lets notifications already being sent
/// finish, their notification-log entries included, before it cancels them.
/// Alertmanager cancels them at once and has no flag for this; ten seconds
/// is the shortest flush deadline (`max(group_interval, 10s)`), and it
/// leaves room within the 30 s most supervisors wait before a SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a stop waits for the remaining tasks (HTTP connections still
/// answering, cluster exchanges) once the flushes are over; what is still
/// running then is dropped with the runtime.
pub const TASKS_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracker of every background task, shared (cheaply cloned) by the
/// app, the dispatchers, the cluster peer and `main`.
#[derive(Clone, Default)]
pub struct Tasks {
    all: TaskTracker,
    /// The aggregation groups' timers (also in `all`): a stop waits for
    /// these alone first, since their flushes still need the cluster and
    /// the database that the other tasks serve.
    flushing: TaskTracker,
    /// Cancelled when the grace period runs out: the notification pipeline
    /// watches it, the shutdown signal itself does not cut a flush.
    abort: CancellationToken,
    panics: Arc<AtomicU64>,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Spawns a tracked task; a panic in it is logged at error level with
    /// `name`.
    pub fn spawn<F>(&self, name: impl Into<Cow<'static, str>>, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.all.spawn(self.supervised(name.into(), fut));
    }

    /// `spawn` for a task that runs notification flushes (a group timer):
    /// `drain_flushes` waits for it.
    pub fn spawn_flushing<F>(&self, name: impl Into<Cow<'static, str>>, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let fut = self
            .flushing
            .track_future(self.supervised(name.into(), fut));
        self.all.spawn(fut);
    }

    fn supervised<F>(&self, name: Cow<'static, str>, fut: F) -> impl Future<Output = ()> + Send
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let panics = self.panics.clone();
        async move {
            // The task's state is dropped with it: nothing observes it
            // half-updated after the panic.
            if let Err(p) = AssertUnwindSafe(fut).catch_unwind().await {
                panics.fetch_add(1, Ordering::Relaxed);
                tracing::error!(task = %name, panic = %panic_message(p.as_ref()), "background task panicked");
            }
        }
    }

    /// A token cancelled once the grace period of a stop has run out (or
    /// at the end of `stop`): what notifies watches it.
    pub fn abort_token(&self) -> CancellationToken {
        self.abort.clone()
    }

    /// How many tasks have panicked since start.
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Tasks running now.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Waits up to `grace` for the flushes in flight (the group timers
    /// must have been told to stop); cancels those left after it. True
    /// when all of them finished in time.
    pub async fn drain_flushes(&self, grace: Duration) -> bool {
        self.flushing.close();
        if tokio::time::timeout(grace, self.flushing.wait())
            .await
            .is_ok()
        {
            return true;
        }
        tracing::warn!(groups = self.flushing.len(), grace = ?grace, "notifications still in flight at the end of the grace period are cancelled");
        self.abort.cancel();
        false
    }

    /// Closes the tracker and waits up to `timeout` for every task; returns
    /// how many were still running then.
    pub async fn stop(&self, timeout: Duration) -> usize {
        self.flushing.close();
        self.all.close();
        self.abort.cancel();
        let _ = tokio::time::timeout(timeout, self.all.wait()).await;
        self.all.len()
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    /// Records the events logged while it is the default subscriber.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(tracing::Level, String)>>>);

    struct Fields(String);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Recorder {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut f = Fields(String::new());
            event.record(&mut f);
            let level = *event.metadata().level();
            self.0.lock().expect("recorder").push((level, f.0));
        }
    }

    #[tokio::test]
    async fn a_panicking_task_is_logged_with_its_name_and_the_stop_still_returns() {
        let rec = Recorder::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(rec.clone()));
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.spawn("steady", async move {
            let _ = rx.await;
        });
        tasks.spawn_flushing(format!("aggregation group {}", "{}:{a=\"b\"}"), async {
            panic!("flush went wrong");
        });
        assert!(
            tasks.drain_flushes(Duration::from_secs(5)).await,
            "a panicked flush counts as finished"
        );
        assert_eq!(tasks.panics(), 1);
        let logged = rec.0.lock().expect("recorder").clone();
        let errors: Vec<&String> = logged
            .iter()
            .filter(|(l, _)| *l == tracing::Level::ERROR)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(errors.len(), 1, "{logged:?}");
        assert!(
            errors[0].contains("aggregation group {}:{a=\"b\"}")
                && errors[0].contains("flush went wrong"),
            "{}",
            errors[0]
        );
        // The other task keeps running until it is told to end.
        assert_eq!(tasks.len(), 1);
        assert!(!tasks.abort_token().is_cancelled());
        tx.send(()).expect("steady task waits");
        assert_eq!(tasks.stop(Duration::from_secs(5)).await, 0);
        assert!(tasks.abort_token().is_cancelled());
    }

    #[tokio::test]
    async fn flushes_left_after_the_grace_period_are_cancelled() {
        let tasks = Tasks::new();
        let abort = tasks.abort_token();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tasks.spawn_flushing("slow flush", async move {
            abort.cancelled().await;
            let _ = tx.send(());
        });
        // Other tasks do not hold up the drain.
        tasks.spawn("forever", std::future::pending());
        let grace = Duration::from_millis(200);
        let started = tokio::time::Instant::now();
        assert!(!tasks.drain_flushes(grace).await);
        assert!(started.elapsed() >= grace);
        rx.await.expect("the flush saw the abort");
        assert_eq!(
            tasks.stop(Duration::from_millis(100)).await,
            1,
            "the pending task"
        );
        assert_eq!(tasks.panics(), 0);
    }
}
