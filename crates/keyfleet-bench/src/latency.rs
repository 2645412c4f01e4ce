use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms track, in microseconds: one minute. Longer samples are
/// clamped to it.
const MAX_TRACKED_MICROS: u64 = 60_000_000;

/// Latencies and failures of one kind of operation, recorded by one or more clients.
#[derive(Debug, Clone)]
pub(crate) struct OpRecorder {
    name: &'static str,
    micros: Histogram<u64>,
    errors: u64,
    error_samples: Vec<String>,
}

/// Number of distinct error messages an [`OpRecorder`] keeps for the report.
const KEPT_ERROR_SAMPLES: usize = 3;

/// Throughput and latency percentiles of one kind of operation over one phase.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    /// Operation name, such as `recovery_start`.
    pub name: &'static str,
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Successful operations per second over the phase.
    pub per_sec: f64,
    /// Median latency of successful operations, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile latency, in milliseconds.
    pub p999_ms: f64,
    /// Highest latency, in milliseconds.
    pub max_ms: f64,
    /// Up to three distinct error messages.
    pub error_samples: Vec<String>,
}

impl OpRecorder {
    pub(crate) fn new(name: &'static str) -> Self {
        let micros = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
            .expect("1 us to 60 s with 3 significant figures are valid histogram bounds");

        Self {
            name,
            micros,
            errors: 0,
            error_samples: Vec::new(),
        }
    }

    /// Records one successful operation that took `latency`.
    pub(crate) fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.micros
            .saturating_record(micros.clamp(1, MAX_TRACKED_MICROS));
    }

    /// Records one failed operation.
    pub(crate) fn record_error(&mut self, message: impl Into<String>) {
        self.errors += 1;
        let message = message.into();
        if self.error_samples.len() < KEPT_ERROR_SAMPLES && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    /// Adds another client's samples of the same operation.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.micros
            .add(&other.micros)
            .expect("histograms with the same bounds merge");
        self.errors += other.errors;
        for message in &other.error_samples {
            if self.error_samples.len() < KEPT_ERROR_SAMPLES
                && !self.error_samples.contains(message)
            {
                self.error_samples.push(message.clone());
            }
        }
    }

    /// Returns the number of successful operations.
    pub(crate) fn ok(&self) -> u64 {
        self.micros.len()
    }

    /// Summarizes the samples of a phase that lasted `elapsed`.
    pub(crate) fn summary(&self, elapsed: Duration) -> OpSummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);

        OpSummary {
            name: self.name,
            ok: self.ok(),
            errors: self.errors,
            per_sec: self.ok() as f64 / secs,
            p50_ms: ms(self.micros.value_at_quantile(0.50)),
            p99_ms: ms(self.micros.value_at_quantile(0.99)),
            p999_ms: ms(self.micros.value_at_quantile(0.999)),
            max_ms: ms(self.micros.max()),
            error_samples: self.error_samples.clone(),
        }
    }
}

/// Merges the recorders that several clients kept for the same operations, by position.
pub(crate) fn merge_all(parts: Vec<Vec<OpRecorder>>) -> Vec<OpRecorder> {
    let mut parts = parts.into_iter();
    let Some(mut total) = parts.next() else {
        return Vec::new();
    };
    for part in parts {
        for (sum, recorder) in total.iter_mut().zip(&part) {
            sum.merge(recorder);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_percentiles() {
        let mut recorder = OpRecorder::new("op");
        for ms in 1..=1000u64 {
            recorder.record(Duration::from_millis(ms));
        }
        recorder.record_error("boom");

        let summary = recorder.summary(Duration::from_secs(10));

        assert_eq!(summary.ok, 1000);
        assert_eq!(summary.errors, 1);
        assert!(
            (summary.per_sec - 100.0).abs() < 1e-9,
            "{}",
            summary.per_sec
        );
        assert!((summary.p50_ms - 500.0).abs() < 1.0, "{}", summary.p50_ms);
        assert!((summary.p99_ms - 990.0).abs() < 1.0, "{}", summary.p99_ms);
        assert!((summary.p999_ms - 999.0).abs() < 1.0, "{}", summary.p999_ms);
    }

    #[test]
    fn merge_adds_samples_and_errors() {
        let mut first = OpRecorder::new("op");
        first.record(Duration::from_millis(2));
        let mut second = OpRecorder::new("op");
        second.record(Duration::from_millis(4));
        second.record_error("timed out");

        let merged = merge_all(vec![vec![first], vec![second]]);

        assert_eq!(merged[0].ok(), 2);
        assert_eq!(merged[0].errors, 1);
        assert_eq!(merged[0].error_samples, vec!["timed out".to_owned()]);
    }
}
