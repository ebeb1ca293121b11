//! Expiry by generation (see the module's doc): when each generation of
//! an address's tables is due, and forgetting it whole once due.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::filter::GenerationFilter;
use super::table::{keep_spare, Table};
use super::{Class, RememberedIdentities, Retention};
use super::{GENERATION_BYTES, HISTORY_BYTES};

impl RememberedIdentities {
    /// When the next generation is due to be forgotten, if any is held.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.due
    }

    /// `next_expiry` worked out from the queues.
    pub(super) fn earliest_due(&self) -> Option<Instant> {
        let epoch = self.epoch?;
        let generations = self
            .expiries
            .iter()
            .zip(&self.classes)
            .filter_map(|(queue, class)| {
                let (number, _) = queue.front()?;
                Some(class.expires_at(epoch, *number))
            });
        let spares = self
            .spare
            .iter()
            .map(|spare| spare.freed + self.spare_keep());
        generations.chain(spares).min()
    }

    /// How long a spare table waits for reuse: two lifetime generations.
    pub(super) fn spare_keep(&self) -> Duration {
        self.classes[Retention::Lifetime.index()].span * 2
    }

    /// Forgets every generation whose retention has passed at `now`.
    #[inline]
    pub(crate) fn expire(&mut self, now: Instant) {
        // Called on every input: one comparison until something is due.
        if self.due.is_some_and(|due| now >= due) {
            self.forget_due(now);
        }
    }

    pub(super) fn forget_due(&mut self, now: Instant) {
        let Some(epoch) = self.epoch else {
            return;
        };
        for index in 0..2 {
            let class = self.classes[index];
            while let Some(&(number, address)) = self.expiries[index].front() {
                if class.expires_at(epoch, number) > now {
                    break;
                }
                self.expiries[index].pop_front();
                self.forget_generation(now, index, number, address);
            }
        }
        let keep = self.spare_keep();
        self.spare.retain(|spare| spare.freed + keep > now);
        self.due = self.earliest_due();
    }

    /// Forgets everything at once (the endpoint closed).
    pub(crate) fn clear(&mut self) {
        self.histories.clear();
        self.expiries.iter_mut().for_each(VecDeque::clear);
        self.len = 0;
        self.bytes = 0;
        self.spare.clear();
        self.due = None;
    }

    pub(super) fn forget_generation(
        &mut self,
        now: Instant,
        class: usize,
        number: u64,
        address: SocketAddr,
    ) {
        let Some(history) = self.histories.get_mut(&address) else {
            return;
        };
        let retention = if class == Retention::Lifetime.index() {
            Retention::Lifetime
        } else {
            Retention::Window
        };
        if let Some(generations) = history.class_mut(retention) {
            if let Some((oldest, mut freed)) = generations.pop_oldest_if(number) {
                freed += GENERATION_BYTES + oldest.tables.iter().map(Table::bytes).sum::<usize>();
                self.len -= oldest.len;
                generations.len -= oldest.len;
                for table in oldest.tables {
                    keep_spare(&mut self.spare, table, now);
                }
                self.spare_to_clear = true;
                // Too few identities left for a filter: it goes at once,
                // and so does one being filled (a class that goes quiet
                // mid-rebuild would keep it, and its box, for good). A
                // filter too large for what is left (more than twelve
                // cells an identity) is rebuilt smaller by the class's
                // later insertions, a step at a time and within their
                // budget (see `rebuild`); until then it stays, exact and
                // accounted.
                if GenerationFilter::cells_for(generations.len) == 0
                    && (generations.filter_wants_rebuild() || generations.is_rebuilding())
                {
                    freed += generations.drop_filter();
                }
                freed += generations.tidy();
                freed += history.settle_window();
                history.bytes -= freed;
                self.bytes -= freed;
            }
        }
        if history.is_empty() {
            // Its tables and filters are gone with its generations.
            self.bytes -= HISTORY_BYTES + history.bytes;
            self.histories.remove(&address);
        }
    }

    pub(super) fn generation_number(&mut self, now: Instant, class: Retention) -> u64 {
        let index = class.index();
        // Called on every insertion: one comparison while the generation
        // lasts. (An earlier `now` gets the later generation, which only
        // keeps its identity longer.)
        if let Some((number, ends)) = self.current[index] {
            if now < ends {
                return number;
            }
        }
        let epoch = *self.epoch.get_or_insert(now);
        let span = self.classes[index].span;
        let number = (now.saturating_duration_since(epoch).as_nanos() / span.as_nanos()) as u64;
        let ends = self.classes[index].expires_at(epoch, number) - self.classes[index].retention;
        self.current[index] = Some((number, ends));
        number
    }
}

impl Class {
    /// When generation `number` is forgotten: `retention` after it ends.
    pub(super) fn expires_at(&self, epoch: Instant, number: u64) -> Instant {
        let end = self
            .span
            .saturating_mul((number + 1).min(u64::from(u32::MAX)) as u32);
        epoch + end + self.retention
    }
}
