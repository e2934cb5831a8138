//! Graceful stop: SIGTERM lets a notification being sent finish and be
//! logged (so a restart does not send it again), within a bounded grace
//! period after which what is left is cancelled.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use common::*;
use serde_json::{json, Value};

/// Herald's `SHUTDOWN_GRACE`.
const GRACE: Duration = Duration::from_secs(10);
const T: Duration = Duration::from_secs(20);

/// A webhook receiver that holds every answer for `hold` before it
/// answers 200, as a slow receiver does.
#[derive(Clone)]
struct SlowHook {
    hold: Duration,
    /// Per request: the alert names, when it arrived, when it was answered.
    log: Arc<Mutex<Vec<Request>>>,
    addr: SocketAddr,
}

#[derive(Clone, Debug)]
struct Request {
    alertnames: Vec<String>,
    arrived: Instant,
    answered: Option<Instant>,
}

impl SlowHook {
    async fn start(hold: Duration) -> SlowHook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = SlowHook {
            hold,
            log: Arc::default(),
            addr: listener.local_addr().unwrap(),
        };
        let app = Router::new()
            .route("/hook", post(answer_slowly))
            .with_state(hook.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        hook
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn requests_for(&self, alertname: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.alertnames.iter().any(|n| n == alertname))
            .count()
    }

    async fn wait_request_for(&self, alertname: &str) -> Request {
        let me = self.clone();
        wait_for(&format!("a request for {alertname}"), T, move || {
            me.requests()
                .into_iter()
                .find(|r| r.alertnames.iter().any(|n| n == alertname))
        })
        .await
    }
}

async fn answer_slowly(State(hook): State<SlowHook>, body: axum::body::Bytes) -> &'static str {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let alertnames = v["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|a| a["labels"]["alertname"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let i = {
        let mut log = hook.log.lock().unwrap();
        log.push(Request {
            alertnames,
            arrived: Instant::now(),
            answered: None,
        });
        log.len() - 1
    };
    // The receiver's own slowness, the behaviour under test: Herald must
    // wait for this answer when it is told to stop meanwhile.
    tokio::time::sleep(hook.hold).await;
    hook.log.lock().unwrap()[i].answered = Some(Instant::now());
    "ok"
}

fn config(hook: &SlowHook) -> String {
    format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url()
    )
}

fn sigterm(h: &Server) -> Instant {
    let st = std::process::Command::new("kill")
        .args(["-TERM", &h.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    Instant::now()
}

/// Waits (up to `timeout`) for the process to exit; its status and when
/// it was seen gone.
async fn wait_exit(
    mut h: Server,
    timeout: Duration,
) -> (std::process::ExitStatus, Instant, Server) {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = h.child.try_wait().unwrap() {
                return (s, Instant::now(), h);
            }
            assert!(
                Instant::now() < deadline,
                "herald did not exit within {timeout:?}; log:\n{}",
                h.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_notification_in_flight_finish_and_log_it() {
    let hook = SlowHook::start(Duration::from_secs(2)).await;
    let root = tempfile::tempdir().unwrap();
    let h = start_herald_at(root.path(), &config(&hook), &[]).await;
    let (code, _) = post_alerts(&h.base, &json!([{"labels": {"alertname": "Drain"}}])).await;
    assert_eq!(code, 200);

    let first = hook.wait_request_for("Drain").await;
    let term = sigterm(&h);
    assert!(
        first.arrived.elapsed() < hook.hold,
        "SIGTERM reached Herald while the receiver still held its answer"
    );
    let (status, gone, h) = wait_exit(h, GRACE + Duration::from_secs(5)).await;
    let log = h.log.lock().unwrap().clone();
    assert!(status.success(), "{status:?}; log:\n{log}");
    assert!(
        gone.duration_since(term) < GRACE,
        "exited {:?} after SIGTERM; log:\n{log}",
        gone.duration_since(term)
    );
    let answered = hook.requests()[0]
        .answered
        .expect("the receiver answered: Herald did not drop the request");
    assert!(answered <= gone, "Herald waited for the answer");
    assert_eq!(hook.requests().len(), 1, "{:?}", hook.requests());

    // Restarted on the same storage: the stored alert's group flushes at
    // once, and the notification log written before the exit holds it
    // back. A second group, flushed group_wait after it is created, shows
    // that window has passed with nothing more for the first.
    let h = start_herald_at(root.path(), &config(&hook), &[]).await;
    wait_counter(&h.base, "alertmanager_nflog_queries_total", 1.0).await;
    let (code, _) = post_alerts(&h.base, &json!([{"labels": {"alertname": "Later"}}])).await;
    assert_eq!(code, 200);
    let posted = Instant::now();
    let later = hook.wait_request_for("Later").await;
    assert!(later.arrived.duration_since(posted) >= Duration::from_millis(900));
    assert_eq!(
        hook.requests_for("Drain"),
        1,
        "no second notification for the drained group: {:?}",
        hook.requests()
    );
    let groups = get_json(&format!("{}/api/v2/alerts/groups", h.base)).await;
    assert!(
        groups.to_string().contains("\"Drain\""),
        "the drained group's alert is still active: {groups}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_still_in_flight_after_the_grace_period_is_cancelled() {
    let hook = SlowHook::start(Duration::from_secs(120)).await;
    let h = start_herald(&config(&hook), &[]).await;
    let (code, _) = post_alerts(&h.base, &json!([{"labels": {"alertname": "Stuck"}}])).await;
    assert_eq!(code, 200);
    hook.wait_request_for("Stuck").await;
    let term = sigterm(&h);
    let (status, gone, h) = wait_exit(h, GRACE + Duration::from_secs(10)).await;
    let log = h.log.lock().unwrap().clone();
    let took = gone.duration_since(term);
    assert!(status.success(), "{status:?}; log:\n{log}");
    assert!(
        took >= GRACE - Duration::from_millis(500),
        "Herald waited out the grace period, not {took:?}; log:\n{log}"
    );
    // The last lines may still be on their way through the pipe.
    let log = wait_for("the cancellation in the log", T, || {
        let log = h.log.lock().unwrap().clone();
        (log.contains("notifications still in flight at the end of the grace period are cancelled")
            && log.contains("context canceled"))
        .then_some(log)
    })
    .await;
    assert!(log.contains("Notify for alerts failed"), "{log}");
    assert_eq!(hook.requests().len(), 1);
    assert!(hook.requests()[0].answered.is_none());
}
