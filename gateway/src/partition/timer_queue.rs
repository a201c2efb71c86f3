//! The timers a partition keeps in memory. Stored timers can be many (every completed
//! invocation has a cleanup timer a retention period away), so memory holds only those due
//! before a moving horizon: every stored timer earlier than `horizon` is armed here, later
//! ones stay in storage until the horizon passes them.

use std::collections::BTreeSet;

use crate::engine::records::Timer;

/// How far ahead timers are loaded.
const WINDOW_MS: u64 = 60_000;
/// Most timers loaded at once; a crowded window moves the horizon closer instead.
const MAX_LOADED: usize = 10_000;

#[derive(Debug, Default)]
pub struct TimerQueue {
    armed: BTreeSet<Timer>,
    /// Every stored timer with `fire_at < horizon` is in `armed`.
    horizon: u64,
}

impl TimerQueue {
    /// Loads stored timers from the horizon on. `load(from, until, max)` returns stored
    /// timers with `from <= fire_at < until`, earliest first, at most `max`.
    pub fn refill<E>(
        &mut self,
        now: u64,
        load: impl FnOnce(u64, u64, usize) -> Result<Vec<Timer>, E>,
    ) -> Result<(), E> {
        let until = now.saturating_add(WINDOW_MS);
        let loaded = load(self.horizon, until, MAX_LOADED)?;
        self.horizon = match loaded.last() {
            Some(last) if loaded.len() == MAX_LOADED => last.fire_at,
            _ => until,
        };
        self.armed.extend(loaded);
        Ok(())
    }

    /// A timer was just stored: arm it if it falls before the horizon.
    pub fn arm(&mut self, timer: Timer) {
        if timer.fire_at < self.horizon {
            self.armed.insert(timer);
        }
    }

    /// When to wake up: the next armed timer, or the horizon (to load more).
    pub fn next_wakeup(&self) -> u64 {
        self.armed.first().map_or(self.horizon, |t| t.fire_at.min(self.horizon))
    }

    pub fn needs_refill(&self, now: u64) -> bool {
        now >= self.horizon
    }

    /// The next armed timer due at `now`, removed from the queue.
    pub fn pop_due(&mut self, now: u64) -> Option<Timer> {
        if self.armed.first()?.fire_at <= now { self.armed.pop_first() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::records::TimerKind;
    use crate::ids::InvocationId;

    fn timer(at: u64) -> Timer {
        Timer { fire_at: at, invocation: InvocationId::generate(at), kind: TimerKind::Cleanup }
    }

    #[test]
    fn keeps_only_the_window_in_memory() {
        let stored = [timer(5), timer(70_000), timer(86_400_000)];
        let load = |from: u64, until: u64, max: usize| -> Result<Vec<Timer>, ()> {
            Ok(stored.iter().filter(|t| t.fire_at >= from && t.fire_at < until).take(max).cloned().collect())
        };
        let mut q = TimerQueue::default();
        q.refill(1_000, load).unwrap();
        assert_eq!(q.next_wakeup(), 5);
        assert_eq!(q.pop_due(1_000).map(|t| t.fire_at), Some(5));
        assert_eq!(q.pop_due(1_000), None);
        // A day away: stored only.
        q.arm(timer(86_400_000));
        assert_eq!(q.next_wakeup(), 61_000, "wakes at the horizon to load more");
        assert!(q.needs_refill(61_000));
        q.refill(61_000, load).unwrap();
        assert_eq!(q.pop_due(70_000).map(|t| t.fire_at), Some(70_000));
        assert_eq!(q.next_wakeup(), 121_000);
        // Soon: armed at once.
        q.arm(timer(80_000));
        assert_eq!(q.next_wakeup(), 80_000);
    }
}
