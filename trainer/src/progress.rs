//! Progress of a parallel loop: items finish in any order on any thread,
//! and the caller's `(done, total)` callback hears of each one in turn,
//! under a lock, so it need only be `Send`.

use std::sync::Mutex;

/// Counts finished items and reports each to the callback.
pub struct Progress<F> {
    done_and_report: Mutex<(usize, F)>,
    total: usize,
}

impl<F: FnMut(usize, usize) + Send> Progress<F> {
    /// Report `(0, total)` and start counting.
    pub fn start(mut report: F, total: usize) -> Progress<F> {
        report(0, total);
        Progress {
            done_and_report: Mutex::new((0, report)),
            total,
        }
    }

    /// One more item finished.
    pub fn item_done(&self) {
        let mut state = self.done_and_report.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        let done = state.0;
        (state.1)(done, self.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn every_item_is_reported_once_in_increasing_order() {
        let mut seen = Vec::new();
        {
            let progress = Progress::start(|done, total| seen.push((done, total)), 50);
            (0..50).into_par_iter().for_each(|_| progress.item_done());
        }
        assert_eq!(seen, (0..=50).map(|d| (d, 50)).collect::<Vec<_>>());
    }
}
