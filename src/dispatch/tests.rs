//! The dispatcher in-process, on tokio's paused clock: each test runs the
//! real timers and routing tree against a stage that records every flush
//! (as Alertmanager's `dispatch_test.go` does with its `recordStage`), or
//! against the real pipeline with a recording notifier. Time moves only
//! when every task waits, so each expectation is exact to the millisecond
//! and a test of hours of group timing runs in milliseconds.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::config::Config;

use crate::model::Muter;
use crate::nflog::MemNotificationLog;
use crate::notify::{Notifier, NotifyError, Pipeline, PipelineDeps};

/// One flush as the stage saw it.
#[derive(Debug)]
struct Flush {
    /// Time since the test started, on tokio's clock.
    at: Duration,
    receiver: String,
    group_key: String,
    /// `alertname` of each alert, with `!` after a resolved one.
    alerts: Vec<String>,
    /// The route labels rendered for the flush.
    route_labels: LabelSet,
}

/// Records each flush; fails it while `fail` is set.
struct Recorder {
    start: Instant,
    tx: mpsc::UnboundedSender<Flush>,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl Stage for Recorder {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let _ = self.tx.send(Flush {
            at: self.start.elapsed(),
            receiver: ctx.receiver.to_string(),
            group_key: ctx.group_key.to_string(),
            alerts: names(&alerts, ctx.now),
            route_labels: ctx.route_labels.clone(),
        });
        if self.fail.load(Ordering::SeqCst) {
            return Err(NotifyError::new(
                false,
                crate::notify::FailureReason::Other,
                "receiver down",
            ));
        }
        Ok(alerts)
    }
}

fn names(alerts: &[Arc<Alert>], now: Timestamp) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            let n = a.labels.get("alertname").unwrap_or_default().to_string();
            if a.resolved_at(now) {
                n + "!"
            } else {
                n
            }
        })
        .collect()
}

struct Harness {
    start: Instant,
    clock: Clock,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
}

impl Harness {
    fn new(config: &str, stage: impl FnOnce(Instant) -> Arc<dyn Stage>) -> Harness {
        let start = Instant::now();
        let clock = Clock::following_tokio("2026-01-01T00:00:00Z".parse().unwrap());
        let config = Config::load(config).unwrap();
        let metrics = Arc::new(Metrics::new());
        let dispatcher = Dispatcher::new(
            Route::tree(config.root_route()),
            stage(start),
            metrics.clone(),
            clock.clone(),
            CancellationToken::new(),
            None,
            crate::tasks::Tasks::new(),
        );
        dispatcher.set_templates(
            Arc::new(crate::template::Templates::alertmanager()),
            "http://am.example".into(),
        );
        Harness {
            start,
            clock,
            dispatcher,
            metrics,
        }
    }

    /// A recorder as the stage, and the flushes it records.
    fn recording(config: &str) -> (Harness, Arc<Recorder>, mpsc::UnboundedReceiver<Flush>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut rec = None;
        let h = Harness::new(config, |start| {
            let r = Arc::new(Recorder {
                start,
                tx,
                fail: AtomicBool::new(false),
            });
            rec = Some(r.clone());
            r
        });
        (h, rec.unwrap(), rx)
    }

    /// Posts `name` (plus `labels`), started `age` ago, firing until
    /// `firing_for` from now (resolved when zero).
    fn post(&self, name: &str, labels: &[(&str, &str)], age: Duration, firing_for: Duration) {
        let now = self.clock.now();
        let mut pairs = vec![("alertname", name)];
        pairs.extend_from_slice(labels);
        let labels = LabelSet::from_strs(pairs);
        let alert = Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations: LabelSet::default(),
            starts_at: now - jiff::SignedDuration::try_from(age).unwrap(),
            ends_at: now + jiff::SignedDuration::try_from(firing_for).unwrap(),
            generator_url: Arc::from(""),
            updated_at: now,
            timeout: false,
        };
        self.dispatcher.insert(&Arc::new(alert));
    }

    fn fire(&self, name: &str) {
        self.post(name, &[], Duration::ZERO, Duration::from_secs(3600 * 24));
    }

    fn resolve(&self, name: &str) {
        self.post(name, &[], Duration::ZERO, Duration::ZERO);
    }

    fn since_start(&self) -> Duration {
        self.start.elapsed()
    }
}

const SIMPLE: &str = "
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: r
";

/// The next flush; tokio's paused clock jumps to it.
async fn next(rx: &mut mpsc::UnboundedReceiver<Flush>) -> Flush {
    rx.recv().await.expect("the dispatcher dropped its stage")
}

/// Asserts nothing is flushed for `d` (of tokio's time, which passes at once).
async fn quiet_for(rx: &mut mpsc::UnboundedReceiver<Flush>, d: Duration) {
    if let Ok(f) = tokio::time::timeout(d, rx.recv()).await {
        panic!("unexpected flush {f:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_group_waits_group_wait_then_flushes_every_group_interval() {
    let (h, _, mut rx) = Harness::recording(SIMPLE);
    h.fire("A");
    let f = next(&mut rx).await;
    assert_eq!(f.at, Duration::from_secs(30));
    assert_eq!(f.group_key, "{}:{alertname=\"A\"}");
    assert_eq!(f.alerts, ["A"]);
    // An alert of another group has its own group_wait.
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.fire("B");
    let f = next(&mut rx).await;
    assert_eq!(
        (f.at, f.alerts),
        (Duration::from_secs(70), vec!["B".into()])
    );
    // A's group flushes on its own schedule, every group_interval.
    let f = next(&mut rx).await;
    assert_eq!(
        (f.at, f.alerts),
        (Duration::from_secs(330), vec!["A".into()])
    );
    let f = next(&mut rx).await;
    assert_eq!(
        (f.at, f.alerts),
        (Duration::from_secs(370), vec!["B".into()])
    );
    assert_eq!(h.metrics.aggregation_groups.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn alerts_joining_a_group_wait_for_its_next_interval() {
    let (h, _, mut rx) = Harness::recording(SIMPLE);
    h.post(
        "A",
        &[("instance", "1")],
        Duration::ZERO,
        Duration::from_secs(86400),
    );
    assert_eq!(next(&mut rx).await.at, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(60)).await;
    h.post(
        "A",
        &[("instance", "2")],
        Duration::ZERO,
        Duration::from_secs(86400),
    );
    // Not flushed at once, nor after another group_wait.
    quiet_for(&mut rx, Duration::from_secs(200)).await;
    let f = next(&mut rx).await;
    assert_eq!(f.at, Duration::from_secs(330));
    assert_eq!(f.alerts, ["A", "A"]);
}

#[tokio::test(start_paused = true)]
async fn an_alert_older_than_group_wait_flushes_at_once() {
    let (h, _, mut rx) = Harness::recording(SIMPLE);
    h.post(
        "A",
        &[],
        Duration::from_secs(3600),
        Duration::from_secs(86400),
    );
    let f = next(&mut rx).await;
    assert_eq!(f.at, Duration::ZERO);
    // Then the usual interval, not a second immediate flush.
    assert_eq!(next(&mut rx).await.at, Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn resolved_alerts_leave_after_a_successful_flush_and_the_empty_group_goes() {
    let (h, _, mut rx) = Harness::recording(SIMPLE);
    h.fire("A");
    assert_eq!(next(&mut rx).await.alerts, ["A"]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.resolve("A");
    let f = next(&mut rx).await;
    assert_eq!(
        (f.at, f.alerts),
        (Duration::from_secs(330), vec!["A!".into()])
    );
    // The group emptied: its timer ends and nothing more is flushed.
    quiet_for(&mut rx, Duration::from_secs(3600)).await;
    assert_eq!(h.metrics.aggregation_groups.get(), 0);
    assert!(h.dispatcher.groups(|_| true, |_| true).is_empty());
    // The alert firing again makes a new group, with a new group_wait.
    let again = h.since_start();
    h.fire("A");
    let f = next(&mut rx).await;
    assert_eq!(f.at - again, Duration::from_secs(30));
    assert_eq!(f.alerts, ["A"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_flush_keeps_resolved_alerts_for_the_next() {
    let (h, rec, mut rx) = Harness::recording(SIMPLE);
    h.fire("A");
    h.fire("B");
    assert_eq!(next(&mut rx).await.alerts, ["A"]);
    assert_eq!(next(&mut rx).await.alerts, ["B"]);
    h.resolve("A");
    rec.fail.store(true, Ordering::SeqCst);
    assert_eq!(next(&mut rx).await.alerts, ["A!"]);
    assert_eq!(next(&mut rx).await.alerts, ["B"]);
    rec.fail.store(false, Ordering::SeqCst);
    let f = next(&mut rx).await;
    assert_eq!(
        (f.at, f.alerts),
        (Duration::from_secs(630), vec!["A!".into()])
    );
    assert_eq!(next(&mut rx).await.alerts, ["B"]);
    // Delivered now: A's group is gone, B's stays.
    quiet_for(&mut rx, Duration::from_secs(200)).await;
    assert_eq!(h.metrics.aggregation_groups.get(), 1);
}

const TREE: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: ['...']
      group_wait: 1s
      continue: true
    - matchers: ['severity=~"crit.*|warn"']
      receiver: tickets
      group_by: [team]
receivers:
  - name: default
  - name: pager
  - name: tickets
"#;

#[tokio::test(start_paused = true)]
async fn continue_sends_an_alert_to_every_matching_route_with_its_own_options() {
    let (h, _, mut rx) = Harness::recording(TREE);
    let long = Duration::from_secs(86400);
    h.post(
        "Down",
        &[("severity", "critical"), ("team", "db")],
        Duration::ZERO,
        long,
    );
    h.post(
        "Slow",
        &[("severity", "warn"), ("team", "db")],
        Duration::ZERO,
        long,
    );
    h.post("Info", &[("severity", "info")], Duration::ZERO, long);
    let mut flushes = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    flushes.sort_by(|a, b| (a.at, &a.receiver).cmp(&(b.at, &b.receiver)));
    let seen: Vec<(u64, &str, &str, Vec<String>)> = flushes
        .iter()
        .map(|f| {
            (
                f.at.as_secs(),
                f.receiver.as_str(),
                f.group_key.as_str(),
                f.alerts.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                1,
                "pager",
                r#"{}/{severity="critical"}:{alertname="Down", severity="critical", team="db"}"#,
                vec!["Down".to_string()]
            ),
            (
                10,
                "default",
                r#"{}:{alertname="Info"}"#,
                vec!["Info".into()]
            ),
            (
                10,
                "tickets",
                r#"{}/{severity=~"crit.*|warn"}:{team="db"}"#,
                vec!["Down".into(), "Slow".into()]
            ),
        ]
    );
    quiet_for(&mut rx, Duration::from_secs(50)).await;
}

#[tokio::test(start_paused = true)]
async fn a_stopped_dispatcher_flushes_no_more() {
    let (h, _, mut rx) = Harness::recording(SIMPLE);
    h.fire("A");
    assert_eq!(next(&mut rx).await.at, Duration::from_secs(30));
    h.dispatcher.stop();
    quiet_for(&mut rx, Duration::from_secs(3600)).await;
    // What a reload does next: a new dispatcher takes the stored alerts; its
    // groups start over, so an alert older than group_wait flushes at once.
    let (h2, _, mut rx2) = Harness::recording(SIMPLE);
    h2.post(
        "A",
        &[],
        Duration::from_secs(3630),
        Duration::from_secs(86400),
    );
    assert_eq!(next(&mut rx2).await.at, Duration::ZERO);
    drop(h);
}
/// A notifier that records the alerts it was given and fails while `fail` is set.
struct Recipient {
    start: Instant,
    calls: std::sync::Mutex<Vec<(Duration, Vec<String>)>>,
    fail: AtomicBool,
    tx: mpsc::UnboundedSender<()>,
}

#[async_trait::async_trait]
impl Notifier for Recipient {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError> {
        self.calls
            .lock()
            .unwrap()
            .push((self.start.elapsed(), names(alerts, ctx.now)));
        let _ = self.tx.send(());
        if self.fail.load(Ordering::SeqCst) {
            return Err(NotifyError::new(
                false,
                crate::notify::FailureReason::ServerError,
                "unexpected status code 500",
            ));
        }
        Ok(())
    }
}

struct NoMute;

impl Muter for NoMute {
    fn retain_unmuted(&self, _: &mut Vec<Arc<Alert>>, _: Timestamp) {}
}

/// The real pipeline (dedup against a notification log, retry,
/// set-notifies) behind the dispatcher, delivering to two recipients.
fn with_pipeline(config: &str) -> (Harness, [Arc<Recipient>; 2], mpsc::UnboundedReceiver<()>) {
    with_muting_pipeline(config, Arc::new(NoMute), Arc::new(NoMute), false)
}

/// `with_pipeline` with the given inhibitor and silences, and
/// `--enable-feature=notify-resolved-when-muted` on or off.
fn with_muting_pipeline(
    config: &str,
    inhibitor: Arc<dyn Muter>,
    silences: Arc<dyn Muter>,
    notify_resolved_when_muted: bool,
) -> (Harness, [Arc<Recipient>; 2], mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let recipients = [0, 1].map(|_| {
        Arc::new(Recipient {
            start,
            calls: Default::default(),
            fail: AtomicBool::new(false),
            tx: tx.clone(),
        })
    });
    let deps = PipelineDeps {
        nflog: Arc::new(MemNotificationLog::default()),
        metrics: Arc::new(Metrics::new()),
        external_url: "http://herald.test".into(),
        retention: Duration::from_secs(120 * 3600),
        inhibitor,
        silences,
        cluster: None,
        notify_resolved_when_muted,
        history: None,
    };
    let notifiers: Vec<(&'static str, Arc<dyn Notifier>, bool)> = recipients
        .iter()
        .map(|r| ("webhook", r.clone() as Arc<dyn Notifier>, true))
        .collect();
    let intervals = Config::load(config).unwrap().time_intervals();
    let pipeline = Arc::new(Pipeline::with_notifiers("r", notifiers, intervals, &deps));
    let h = Harness::new(config, |_| pipeline);
    (h, recipients, rx)
}

fn calls(r: &Recipient) -> Vec<(u64, Vec<String>)> {
    r.calls
        .lock()
        .unwrap()
        .iter()
        .map(|(at, a)| (at.as_secs(), a.clone()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn unchanged_groups_repeat_only_after_repeat_interval() {
    let config = "
route:
  receiver: r
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 5m
receivers:
  - name: r
";
    let (h, [a, _], mut rx) = with_pipeline(config);
    h.fire("A");
    rx.recv().await;
    rx.recv().await;
    // Flushes at 70 s … 310 s find the notification logged within
    // repeat_interval; the one at 370 s is past it (Alertmanager compares
    // strictly: 300 s after the entry is not yet due).
    tokio::time::sleep(Duration::from_secs(400)).await;
    assert_eq!(calls(&a), [(10, vec!["A".into()]), (370, vec!["A".into()])]);
    drop(h);
}

#[tokio::test(start_paused = true)]
async fn a_failed_integration_keeps_the_resolution_for_the_next_flush_and_only_it_gets_it() {
    let (h, [ok, down], mut rx) = with_pipeline(SIMPLE);
    h.fire("A");
    rx.recv().await;
    rx.recv().await;
    down.fail.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.resolve("A");
    // At 330 s both are told of the resolution; one fails, so the flush
    // fails and the group keeps the resolved alert.
    rx.recv().await;
    rx.recv().await;
    down.fail.store(false, Ordering::SeqCst);
    // At 630 s the healthy integration's log already holds the resolution:
    // only the one that failed is sent it again. Then the group is gone.
    rx.recv().await;
    quiet_for_signal(&mut rx, Duration::from_secs(3600)).await;
    assert_eq!(
        calls(&ok),
        [(30, vec!["A".into()]), (330, vec!["A!".into()])]
    );
    assert_eq!(
        calls(&down),
        [
            (30, vec!["A".into()]),
            (330, vec!["A!".into()]),
            (630, vec!["A!".into()])
        ]
    );
    assert_eq!(h.metrics.aggregation_groups.get(), 0);
}

async fn quiet_for_signal(rx: &mut mpsc::UnboundedReceiver<()>, d: Duration) {
    assert!(
        tokio::time::timeout(d, rx.recv()).await.is_err(),
        "unexpected notification"
    );
}

const ROUTE_LABELS: &str = r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
  labels:
    team: ops
    summary: '{{ .GroupLabels.alertname }} for {{ routeLabels "team" }} ({{ len .Alerts }})'
  routes:
    - matchers: ['alertname="Db"']
      receiver: db
      labels:
        team: db
        loop: '{{ routeLabels "loop2" }}'
        loop2: '{{ routeLabels "loop" }}'
        reason: '{{ .NotificationReason }}'
        raw: '{{ .RouteLabels.team }}'
receivers:
  - name: r
  - name: db
"#;

fn pairs(l: &LabelSet) -> Vec<(String, String)> {
    l.iter().map(|(k, v)| (k.into(), v.into())).collect()
}

#[tokio::test(start_paused = true)]
async fn route_labels_are_inherited_and_rendered_per_flush() {
    let (h, _, mut rx) = Harness::recording(ROUTE_LABELS);
    h.fire("Other");
    h.post(
        "Db",
        &[("i", "1")],
        Duration::ZERO,
        Duration::from_secs(3600),
    );
    h.post(
        "Db",
        &[("i", "2")],
        Duration::ZERO,
        Duration::from_secs(3600),
    );
    let mut flushes = [next(&mut rx).await, next(&mut rx).await];
    flushes.sort_by(|a, b| a.receiver.cmp(&b.receiver));
    // The child overrides `team` and inherits `summary`, which sees the
    // child's value; a cycle drops both labels; the reason is unknown while
    // route labels render, and `.RouteLabels` holds the raw values then.
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(flushes[0].receiver, "db");
    // Route labels are not part of the group key.
    assert_eq!(
        flushes[0].group_key,
        "{}/{alertname=\"Db\"}:{alertname=\"Db\"}"
    );
    assert_eq!(
        pairs(&flushes[0].route_labels),
        [
            s("raw", "db"),
            s("reason", "unknown"),
            s("summary", "Db for db (2)"),
            s("team", "db"),
        ]
    );
    assert_eq!(
        pairs(&flushes[1].route_labels),
        [s("summary", "Other for ops (1)"), s("team", "ops")]
    );
    // The groups API renders against the group's current alerts.
    h.post(
        "Db",
        &[("i", "3")],
        Duration::ZERO,
        Duration::from_secs(3600),
    );
    let groups = h.dispatcher.groups(|_| true, |_| true);
    let db = groups.iter().find(|g| g.receiver == "db").unwrap();
    assert_eq!(db.route_labels.get("summary"), Some("Db for db (3)"));
}

/// `--dispatch.start-delay`: no group flushes before the start time; one
/// whose `group_wait` (or an old alert's flush at once) falls earlier
/// flushes then, and groups made later keep their own `group_wait`.
#[tokio::test(start_paused = true)]
async fn no_group_flushes_before_the_dispatch_start() {
    let (h, _, mut rx) = Harness::recording(SIMPLE);
    let Harness {
        start,
        clock,
        dispatcher,
        metrics,
    } = h;
    let h = Harness {
        dispatcher: dispatcher.not_before(start + Duration::from_secs(60)),
        start,
        clock,
        metrics,
    };
    h.fire("A");
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.post(
        "Old",
        &[],
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    );
    let mut first: Vec<(Duration, Vec<String>)> = Vec::new();
    for _ in 0..2 {
        let f = next(&mut rx).await;
        first.push((f.at, f.alerts));
    }
    first.sort();
    assert_eq!(
        first,
        [
            (Duration::from_secs(60), vec!["A".to_string()]),
            (Duration::from_secs(60), vec!["Old".to_string()]),
        ]
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.fire("B");
    let f = next(&mut rx).await;
    assert_eq!(
        (f.at, f.alerts),
        (Duration::from_secs(100), vec!["B".into()])
    );
}

/// Mutes the alerts with a label value it holds: a silence or an
/// inhibition made at will.
#[derive(Default)]
struct Switch(std::sync::Mutex<Vec<String>>);

impl Switch {
    fn mute(&self, value: &str) {
        self.0.lock().unwrap().push(value.into());
    }
}

impl Muter for Switch {
    fn retain_unmuted(&self, alerts: &mut Vec<Arc<Alert>>, _: Timestamp) {
        let muted = self.0.lock().unwrap();
        alerts.retain(|a| !a.labels.iter().any(|(_, v)| muted.iter().any(|m| m == v)));
    }
}

#[derive(Clone, Copy, Debug)]
enum Muting {
    Silence,
    Inhibition,
}

/// A/1 and A/2 (`instance` 1 and 2) fire in one group, B in another; A/2
/// and B are muted before they fire, so the flush at 30 s notifies A/1
/// alone, and `down` fails it (it never learns A/1 fires). A/1 is muted at
/// 60 s; all resolve at 400 s; the flush at 630 s sees them resolved and
/// muted. The calls each recipient got.
async fn muted_then_resolved(how: Muting, feature: bool) -> [Vec<(u64, Vec<String>)>; 2] {
    let switch = Arc::new(Switch::default());
    let (inhibitor, silences): (Arc<dyn Muter>, Arc<dyn Muter>) = match how {
        Muting::Silence => (Arc::new(NoMute), switch.clone()),
        Muting::Inhibition => (switch.clone(), Arc::new(NoMute)),
    };
    let (h, [ok, down], mut rx) = with_muting_pipeline(SIMPLE, inhibitor, silences, feature);
    let day = Duration::from_secs(86400);
    switch.mute("2");
    switch.mute("B");
    down.fail.store(true, Ordering::SeqCst);
    h.post("A", &[("instance", "1")], Duration::ZERO, day);
    h.post("A", &[("instance", "2")], Duration::ZERO, day);
    h.fire("B");
    rx.recv().await;
    rx.recv().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    down.fail.store(false, Ordering::SeqCst);
    switch.mute("1");
    tokio::time::sleep(Duration::from_secs(340)).await;
    h.post("A", &[("instance", "1")], Duration::ZERO, Duration::ZERO);
    h.post("A", &[("instance", "2")], Duration::ZERO, Duration::ZERO);
    h.resolve("B");
    quiet_for_signal(&mut rx, Duration::from_secs(200)).await;
    if feature {
        rx.recv().await;
    }
    quiet_for_signal(&mut rx, Duration::from_secs(3600)).await;
    // Whatever was sent, the resolved alerts are gone with their groups.
    assert_eq!(
        h.metrics.aggregation_groups.get(),
        0,
        "{how:?}, feature {feature}"
    );
    [calls(&ok), calls(&down)]
}

#[tokio::test(start_paused = true)]
async fn a_muted_alert_resolves_unnotified_as_in_alertmanager() {
    for how in [Muting::Silence, Muting::Inhibition] {
        let [ok, down] = muted_then_resolved(how, false).await;
        assert_eq!(ok, [(30, vec!["A".into()])], "{how:?}");
        assert_eq!(down, [(30, vec!["A".into()])], "{how:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn with_the_feature_a_muted_alert_notified_firing_is_notified_resolved_where_it_was_notified()
{
    for how in [Muting::Silence, Muting::Inhibition] {
        let [ok, down] = muted_then_resolved(how, true).await;
        // Only A/1 is told resolved: A/2 and B, muted before they were ever
        // notified, stay unsent, and `down`, which never delivered A/1
        // firing, is not told it resolved.
        assert_eq!(
            ok,
            [(30, vec!["A".into()]), (630, vec!["A!".into()])],
            "{how:?}"
        );
        assert_eq!(down, [(30, vec!["A".into()])], "{how:?}");
    }
}

/// Notified at 30 s, resolved at 400 s; the flush at 630 s falls outside
/// the route's active interval, or inside its mute interval.
async fn time_muted_then_resolved(
    interval_key: &str,
    times: &str,
    feature: bool,
) -> Vec<(u64, Vec<String>)> {
    let config = format!(
        r#"
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="A"']
      {interval_key}: [window]
time_intervals:
  - name: window
    time_intervals:
      - times: [{times}]
receivers:
  - name: r
"#
    );
    let (h, [ok, _], mut rx) =
        with_muting_pipeline(&config, Arc::new(NoMute), Arc::new(NoMute), feature);
    h.fire("A");
    rx.recv().await;
    rx.recv().await;
    tokio::time::sleep(Duration::from_secs(370)).await;
    h.resolve("A");
    quiet_for_signal(&mut rx, Duration::from_secs(200)).await;
    if feature {
        rx.recv().await;
        rx.recv().await;
    }
    quiet_for_signal(&mut rx, Duration::from_secs(3600)).await;
    assert_eq!(h.metrics.aggregation_groups.get(), 0);
    calls(&ok)
}

#[tokio::test(start_paused = true)]
async fn with_the_feature_a_time_muted_alert_notified_firing_is_notified_resolved() {
    // The test clock starts at 00:00 UTC.
    for (key, times) in [
        (
            "mute_time_intervals",
            "{start_time: '00:10', end_time: '00:20'}",
        ),
        (
            "active_time_intervals",
            "{start_time: '00:00', end_time: '00:10'}",
        ),
    ] {
        let without = time_muted_then_resolved(key, times, false).await;
        assert_eq!(without, [(30, vec!["A".into()])], "{key}");
        let with = time_muted_then_resolved(key, times, true).await;
        assert_eq!(
            with,
            [(30, vec!["A".into()]), (630, vec!["A!".into()])],
            "{key}"
        );
    }
}
