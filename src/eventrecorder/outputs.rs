//! Where events go: JSONL files, stdout, webhooks (`file.go`, `stdout.go`,
//! `webhook.go`). Each output is named as Alertmanager names it in the
//! `output` label (`file:<path>`, `stdout`, `webhook:<url without
//! credentials or query>`).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::{EventRecorderConfig, WebhookOutputConfig};
use super::metrics::EventMetrics;

pub(super) trait Output: Send {
    fn name(&self) -> &str;
    /// Writes or queues one event; the bytes count for the bytes-written
    /// metric.
    fn send(&mut self, line: &[u8]) -> std::io::Result<usize>;
    fn close(self: Box<Self>);
}

/// The outputs of `cfg`; one that cannot be opened is logged and left out
/// (the caller compares the count, as Alertmanager's reload does).
pub(super) fn build(
    cfg: &EventRecorderConfig,
    metrics: &Arc<EventMetrics>,
    handle: &tokio::runtime::Handle,
) -> Vec<Box<dyn Output>> {
    let mut out: Vec<Box<dyn Output>> = Vec::new();
    for f in &cfg.file_outputs {
        match FileOutput::open(&f.path) {
            Ok(o) => out.push(Box::new(o)),
            Err(e) => {
                tracing::error!(path = %f.path, err = %e, "Failed to create file event recorder output")
            }
        }
    }
    for w in &cfg.webhook_outputs {
        match WebhookOutput::start(w, metrics.clone(), handle) {
            Ok(o) => out.push(Box::new(o)),
            Err(e) => {
                tracing::error!(err = %e, "Failed to create webhook event recorder output")
            }
        }
    }
    for _ in &cfg.stdout_outputs {
        out.push(Box::new(StdoutOutput));
    }
    out
}

/// A JSONL file, appended to. Opened again when it was renamed or removed
/// (log rotation): Alertmanager watches the directory for that, Herald
/// compares the file's inode with the path's before each write.
struct FileOutput {
    path: String,
    name: String,
    file: File,
}

fn open_append(path: &str) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl FileOutput {
    fn open(path: &str) -> std::io::Result<FileOutput> {
        Ok(FileOutput {
            path: path.to_string(),
            name: format!("file:{path}"),
            file: open_append(path)?,
        })
    }

    fn rotated(&self) -> bool {
        let Ok(open) = self.file.metadata() else {
            return true;
        };
        match std::fs::metadata(&self.path) {
            Ok(on_disk) => on_disk.ino() != open.ino() || on_disk.dev() != open.dev(),
            Err(_) => true,
        }
    }
}

impl Output for FileOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if self.rotated() {
            match open_append(&self.path) {
                Ok(f) => self.file = f,
                Err(e) => {
                    tracing::error!(path = %self.path, err = %e, "Failed to reopen event recorder file")
                }
            }
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        Ok(buf.len())
    }

    fn close(self: Box<Self>) {}
}

struct StdoutOutput;

impl Output for StdoutOutput {
    fn name(&self) -> &str {
        "stdout"
    }

    fn send(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut out = std::io::stdout().lock();
        out.write_all(line)?;
        out.write_all(b"\n")?;
        Ok(line.len() + 1)
    }

    fn close(self: Box<Self>) {}
}

/// Alertmanager's webhook defaults.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_WORKERS: usize = 4;
const DEFAULT_MAX_RETRIES: u32 = 3;
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const DEFAULT_BATCH_MAX_EVENTS: usize = 100;
const DEFAULT_BATCH_MAX_BYTES: usize = 1 << 20;
const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_millis(100);
const QUEUE_SIZE: usize = 1024;
/// How long a closing webhook output may go on delivering what it holds.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

struct Delivery {
    client: crate::notify::http::Client,
    url: String,
    name: String,
    max_retries: u32,
    backoff: Duration,
    cancel: tokio_util::sync::CancellationToken,
}

impl Delivery {
    /// `postWithRetry`: exponential backoff between attempts; a stop
    /// during a backoff drops the event.
    async fn post_with_retry(&self, body: Vec<u8>) {
        for attempt in 0..self.max_retries {
            match self.post(body.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(output = %self.name, attempt = attempt + 1, err = %e, "Event recorder HTTP output POST failed");
                }
            }
            if attempt + 1 < self.max_retries {
                let wait = self
                    .backoff
                    .checked_mul(1u32 << attempt.min(20))
                    .unwrap_or(MAX_BACKOFF)
                    .min(MAX_BACKOFF);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.cancel.cancelled() => {
                        tracing::warn!(output = %self.name, "Event recorder webhook shutdown during retry backoff, dropping event");
                        return;
                    }
                }
            }
        }
        tracing::error!(output = %self.name, retries = self.max_retries, "Event recorder HTTP output POST failed after retries, dropping event");
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let req = self
            .client
            .post_json(&self.url, body)
            .await
            .map_err(|e| e.to_string())?;
        let resp = req
            .send()
            .await
            .map_err(|e| format!("event recorder webhook POST failed: {}", e.without_url()))?;
        let code = resp.status().as_u16();
        if code / 100 != 2 {
            return Err(format!("event recorder webhook returned HTTP {code}"));
        }
        Ok(())
    }
}

struct WebhookOutput {
    name: String,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cancel: tokio_util::sync::CancellationToken,
    metrics: Arc<EventMetrics>,
    handle: tokio::runtime::Handle,
}

/// The URL without credentials, query or fragment: it names the output in
/// metrics and logs.
fn sanitize(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut p) => {
            let _ = p.set_username("");
            let _ = p.set_password(None);
            p.set_query(None);
            p.set_fragment(None);
            p.to_string()
        }
        Err(_) => "<invalid>".into(),
    }
}

impl WebhookOutput {
    fn start(
        cfg: &WebhookOutputConfig,
        metrics: Arc<EventMetrics>,
        handle: &tokio::runtime::Handle,
    ) -> Result<WebhookOutput, String> {
        let url = cfg
            .url
            .as_ref()
            .map(|u| u.expose().to_string())
            .unwrap_or_default();
        let timeout = Some(cfg.timeout.0)
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        let http = cfg.http_config.clone().unwrap_or_default();
        let client = crate::notify::http::Client::new(&http, Some(timeout))
            .map_err(|e| format!("creating HTTP client for event recorder webhook: {e}"))?;
        let name = format!("webhook:{}", sanitize(&url));
        let cancel = tokio_util::sync::CancellationToken::new();
        let workers = usize::try_from(cfg.workers)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_WORKERS);
        let delivery = Arc::new(Delivery {
            client,
            url,
            name: name.clone(),
            max_retries: u32::try_from(cfg.max_retries)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_MAX_RETRIES),
            backoff: Some(cfg.retry_backoff.0)
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_RETRY_BACKOFF),
            cancel: cancel.clone(),
        });
        let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE_SIZE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        if cfg.batch {
            let batch = Batch {
                max_events: usize::try_from(cfg.batch_max_events)
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or(DEFAULT_BATCH_MAX_EVENTS),
                max_bytes: usize::try_from(cfg.batch_max_bytes)
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or(DEFAULT_BATCH_MAX_BYTES),
                interval: Some(cfg.batch_flush_interval.0)
                    .filter(|d| !d.is_zero())
                    .unwrap_or(DEFAULT_BATCH_INTERVAL),
            };
            let (btx, brx) = mpsc::channel::<Vec<u8>>(workers);
            let brx = Arc::new(tokio::sync::Mutex::new(brx));
            tasks.push(handle.spawn(batch_loop(rx, btx, batch)));
            for _ in 0..workers {
                tasks.push(handle.spawn(worker(brx.clone(), delivery.clone())));
            }
        } else {
            for _ in 0..workers {
                tasks.push(handle.spawn(worker(rx.clone(), delivery.clone())));
            }
        }
        Ok(WebhookOutput {
            name,
            tx: Some(tx),
            tasks,
            cancel,
            metrics,
            handle: handle.clone(),
        })
    }
}

/// Takes the next body from a queue the workers share.
async fn worker(rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>>, d: Arc<Delivery>) {
    loop {
        let next = rx.lock().await.recv().await;
        match next {
            Some(body) => d.post_with_retry(body).await,
            None => return,
        }
    }
}

struct Batch {
    max_events: usize,
    max_bytes: usize,
    interval: Duration,
}

/// `batchLoop`: events joined into a JSON array, sent when the batch is
/// full (count or bytes) or `interval` after its first event.
async fn batch_loop(
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Vec<u8>>>>,
    out: mpsc::Sender<Vec<u8>>,
    b: Batch,
) {
    let mut rx = rx.lock().await;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 2usize;
    let mut deadline: Option<tokio::time::Instant> = None;
    async fn flush(batch: &mut Vec<Vec<u8>>, size: &mut usize, out: &mpsc::Sender<Vec<u8>>) {
        if batch.is_empty() {
            return;
        }
        let mut body = Vec::with_capacity(*size);
        body.push(b'[');
        for (i, e) in batch.drain(..).enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&e);
        }
        body.push(b']');
        *size = 2;
        let _ = out.send(body).await;
    }
    loop {
        let next = match deadline {
            Some(d) => tokio::select! {
                n = rx.recv() => n.map(Some),
                _ = tokio::time::sleep_until(d) => Some(None),
            },
            None => rx.recv().await.map(Some),
        };
        match next {
            None => {
                flush(&mut batch, &mut size, &out).await;
                return;
            }
            Some(None) => {
                deadline = None;
                flush(&mut batch, &mut size, &out).await;
            }
            Some(Some(data)) => {
                let extra = data.len() + usize::from(!batch.is_empty());
                if !batch.is_empty() && (batch.len() >= b.max_events || size + extra > b.max_bytes)
                {
                    deadline = None;
                    flush(&mut batch, &mut size, &out).await;
                }
                size += data.len() + usize::from(!batch.is_empty());
                batch.push(data);
                if batch.len() == 1 {
                    deadline = Some(tokio::time::Instant::now() + b.interval);
                }
                if batch.len() >= b.max_events || size >= b.max_bytes {
                    deadline = None;
                    flush(&mut batch, &mut size, &out).await;
                }
            }
        }
    }
}

impl Output for WebhookOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn send(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if let Some(tx) = &self.tx {
            if tx.try_send(line.to_vec()).is_err() {
                self.metrics.output_drop(&self.name);
                tracing::warn!(output = %self.name, "Event recorder HTTP output queue full, dropping event");
            }
        }
        Ok(line.len())
    }

    /// Delivers what is queued, for at most [`CLOSE_TIMEOUT`]; then the
    /// retries still waiting are abandoned. Runs on the writer thread,
    /// never on the runtime.
    fn close(mut self: Box<Self>) {
        self.tx = None;
        let tasks = std::mem::take(&mut self.tasks);
        let cancel = self.cancel.clone();
        self.handle.block_on(async move {
            let all = futures_util::future::join_all(tasks);
            tokio::pin!(all);
            if tokio::time::timeout(CLOSE_TIMEOUT, &mut all).await.is_err() {
                cancel.cancel();
                all.await;
            }
        });
    }
}
