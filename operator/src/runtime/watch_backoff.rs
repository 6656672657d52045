//! Backoff of a controller's watches (kube-runtime's "trigger backoff").
//!
//! kube-runtime applies one backoff to the merged stream of all watches of a controller, and
//! its default (0.8 s doubling to 30 s plus jitter, reset only after 120 s) keeps growing
//! while several watches recover from the same event. After an API server restart every
//! watch fails a few times in a row (connection refused, then 403 until the new server's RBAC
//! cache is filled, then 410 "too old resource version"), and the controller was measured
//! blind for minutes (e2e `serial_apiserver_restart_resumes_watches`). This backoff stays
//! short: 200 ms doubling to at most 3 s, and starts over after 10 s without an error.

use std::time::{Duration, Instant};

use kube::runtime::utils::Backoff;

#[derive(Debug, Clone)]
pub struct WatchBackoff {
    min: Duration,
    max: Duration,
    quiet_reset: Duration,
    next: Duration,
    last: Option<Instant>,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self::new(
            Duration::from_millis(200),
            Duration::from_secs(3),
            Duration::from_secs(10),
        )
    }
}

impl WatchBackoff {
    pub fn new(min: Duration, max: Duration, quiet_reset: Duration) -> Self {
        Self {
            min,
            max,
            quiet_reset,
            next: min,
            last: None,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) > self.quiet_reset)
        {
            self.next = self.min;
        }
        self.last = Some(now);
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        Some(delay)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = self.min;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = WatchBackoff::new(
            Duration::from_millis(100),
            Duration::from_millis(500),
            Duration::from_secs(60),
        );
        let got: Vec<u64> = (0..5)
            .map(|_| b.next().unwrap().as_millis() as u64)
            .collect();
        assert_eq!(got, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn starts_over_after_a_quiet_period() {
        let mut b = WatchBackoff::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            Duration::from_millis(20),
        );
        b.next();
        b.next();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.next(), Some(Duration::from_millis(100)));
    }
}
