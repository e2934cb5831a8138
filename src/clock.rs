//! Where Herald reads the wall clock. Timers already run on tokio's clock;
//! the times they compare against (an alert's `startsAt`, whether it has
//! resolved, the flush time in the notification log) must move with it, or
//! a test on tokio's paused clock would see timers fire while wall time
//! stands still. Code that decides anything by the time asks a `Clock`
//! instead of calling `Timestamp::now()`.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

/// The system clock, or one that follows tokio's clock from a fixed start.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<Anchor>>);

#[derive(Debug)]
struct Anchor {
    wall: Timestamp,
    tokio: tokio::time::Instant,
}

impl Clock {
    /// The system's wall clock: what Herald runs on.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that reads `start` now and then moves exactly as tokio's
    /// clock does: on a paused runtime, only when the test advances it.
    pub fn following_tokio(start: Timestamp) -> Clock {
        Clock(Some(Arc::new(Anchor {
            wall: start,
            tokio: tokio::time::Instant::now(),
        })))
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            None => Timestamp::now(),
            Some(a) => {
                let elapsed =
                    SignedDuration::try_from(a.tokio.elapsed()).unwrap_or(SignedDuration::MAX);
                a.wall.saturating_add(elapsed).unwrap_or(a.wall)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_with_tokio() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = Clock::following_tokio(start);
        assert_eq!(c.now(), start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now(), start + SignedDuration::from_secs(90));
    }
}
