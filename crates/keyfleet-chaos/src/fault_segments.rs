//! Runs a chaos workload through the fault kinds one after another. Each kind gets a segment of
//! the run, in which it is injected, held and healed again and again until the workload has
//! invoked a minimum number of operations under it. After every heal the segment measures how
//! long the fleet takes to serve again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::history::{Event, History, Outcome, Phase};
use crate::nemesis::{Fault, FaultTimeline, Nemesis, run_fault};
use crate::workload::{Workload, WorkloadConfig, time_to_serve};

/// Operation counts and recovery times of one fault kind's segment of a run.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub fault: Fault,
    pub injections: u32,
    /// Operations invoked while the kind was injected and healed, and their outcomes.
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    /// The slowest time to serve again after one of this kind's heals.
    pub max_serve_again_ms: Option<u64>,
    /// Start and end of the segment on the history's clock.
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The fault-injecting side of a run that gives each fault kind its own segment.
pub struct FaultSegments<'a, N: Nemesis> {
    nemesis: &'a mut N,
    workload: &'a Workload,
    history: &'a History,
    timeline: &'a FaultTimeline,
    config: &'a WorkloadConfig,
    rng: fastrand::Rng,
    /// How long each fault is held before it is healed.
    hold: Duration,
    /// Upper bound of the wait for the fleet to serve after a heal.
    recovery_wait: Duration,
    injections: u32,
}

impl<N: Nemesis> std::fmt::Debug for FaultSegments<'_, N> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FaultSegments")
            .field("hold", &self.hold)
            .field("recovery_wait", &self.recovery_wait)
            .field("injections", &self.injections)
            .finish_non_exhaustive()
    }
}

impl<'a, N: Nemesis> FaultSegments<'a, N> {
    /// Prepares segments that draw the fault targets from `seed`.
    pub fn new(
        nemesis: &'a mut N,
        workload: &'a Workload,
        timeline: &'a FaultTimeline,
        seed: u64,
        hold: Duration,
        recovery_wait: Duration,
    ) -> Self {
        Self {
            nemesis,
            history: workload.history(),
            config: workload.config(),
            workload,
            timeline,
            rng: fastrand::Rng::with_seed(seed),
            hold,
            recovery_wait,
            injections: 0,
        }
    }

    /// Returns the nemesis, for example to heal every fault at the end of the run.
    pub fn nemesis(&mut self) -> &mut N {
        self.nemesis
    }

    /// Runs one segment per fault kind of `faults`, in order, with `min_ops` operations each.
    /// Stops at the first segment that fails, and returns the summaries of the finished
    /// segments together with that failure.
    pub async fn run_kinds(
        &mut self,
        faults: &[Fault],
        min_ops: usize,
    ) -> (Vec<KindSummary>, Option<String>) {
        let mut summaries = Vec::new();
        for fault in faults {
            match self.run_kind(*fault, min_ops).await {
                Ok(summary) => summaries.push(summary),
                Err(failure) => return (summaries, Some(failure)),
            }
        }
        (summaries, None)
    }

    /// Injects and heals `fault` until `min_ops` operations were invoked under it, and at
    /// least once. Fails when an injection fails or the fleet does not serve again in time.
    pub async fn run_kind(&mut self, fault: Fault, min_ops: usize) -> Result<KindSummary, String> {
        let start_ns = self.history.now_ns();
        let start_ops = self.history.op_count();
        let mut injections = 0;
        let mut max_serve_again: Option<Duration> = None;

        while self.history.op_count() - start_ops < min_ops || injections == 0 {
            if self.workload.stopped() {
                return Err("the workload stopped before the run ended".to_owned());
            }
            self.inject(fault).await?;
            injections += 1;

            let probe = format!("{}probe-{}", self.config.user_prefix, self.injections);
            let Some(serve_again) = time_to_serve(self.config, &probe, self.recovery_wait).await
            else {
                return Err(format!(
                    "the fleet did not serve within {:?} of healing {fault:?}",
                    self.recovery_wait
                ));
            };
            self.timeline.record(
                Some(fault),
                format!("served again {} ms after the heal", serve_again.as_millis()),
            );
            max_serve_again = max_serve_again.max(Some(serve_again));
        }

        Ok(KindSummary {
            fault,
            injections,
            ops: self.history.op_count() - start_ops,
            ok: 0,
            fail: 0,
            unknown: 0,
            max_serve_again_ms: max_serve_again.map(millis),
            start_ns,
            end_ns: self.history.now_ns(),
        })
    }

    async fn inject(&mut self, fault: Fault) -> Result<(), String> {
        self.injections += 1;
        let result = match fault {
            Fault::KillLeaderMidRecovery => {
                self.workload
                    .kill_leader_mid_recovery(&mut *self.nemesis, self.timeline, self.injections)
                    .await
            }
            other => {
                run_fault(
                    &mut *self.nemesis,
                    other,
                    self.hold,
                    &mut self.rng,
                    self.timeline,
                )
                .await
            }
        };
        result.map_err(|error| error.to_string())
    }
}

/// Fills in each summary's outcome counts from the operations invoked in its segment.
pub fn count_outcomes(summaries: &mut [KindSummary], events: &[Event]) {
    let completions: BTreeMap<u64, &Outcome> = events
        .iter()
        .filter(|event| event.phase == Phase::Complete)
        .filter_map(|event| event.outcome.as_ref().map(|outcome| (event.op_id, outcome)))
        .collect();

    for event in events.iter().filter(|event| event.phase == Phase::Invoke) {
        let Some(summary) = summaries
            .iter_mut()
            .find(|summary| (summary.start_ns..summary.end_ns).contains(&event.time_ns))
        else {
            continue;
        };
        match completions.get(&event.op_id) {
            Some(Outcome::Ok(_)) => summary.ok += 1,
            Some(Outcome::Fail { .. }) => summary.fail += 1,
            _ => summary.unknown += 1,
        }
    }
}

/// Formats `summaries` as a table, one line per fault kind.
pub fn summary_table(summaries: &[KindSummary]) -> String {
    let mut table = format!(
        "{:<24} {:>10} {:>7} {:>7} {:>7} {:>7} {:>18}\n",
        "fault", "injections", "ops", "ok", "failed", "unknown", "max serve again ms"
    );
    for summary in summaries {
        let serve = summary
            .max_serve_again_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        table.push_str(&format!(
            "{:<24} {:>10} {:>7} {:>7} {:>7} {:>7} {:>18}\n",
            format!("{:?}", summary.fault),
            summary.injections,
            summary.ops,
            summary.ok,
            summary.fail,
            summary.unknown,
            serve
        ));
    }
    table
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
