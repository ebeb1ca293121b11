//! The action language: one operation per input byte (see
//! `exactly_once` for the table), and the
//! applications' sends and cancels.

use std::time::Duration;

use super::oracle::SendRecord;
use super::tag::{tagged_payload, TAG_LEN};
use super::trace::{Step, NAMES};
use super::{Bytes8, World};
use crate::SendOptions;

impl World {
    pub(super) fn step(&mut self, input: &mut Bytes8<'_>) {
        let op = input.next();
        let side = usize::from(op >> 7);
        let arg = (op >> 4) & 7;
        self.expire();
        match op & 0x0f {
            2 => {
                for _ in 0..=arg {
                    if let Some(datagram) = self.queues[side].pop_front() {
                        let wire = self.wire(&datagram.bytes);
                        self.record(Step::Drop { to: side, wire });
                    }
                }
            }
            3 => {
                let len = self.queues[side].len();
                if len > 0 {
                    let datagram = &self.queues[side][usize::from(arg) % len];
                    let (bytes, source) = (datagram.bytes.clone(), datagram.source);
                    let open = datagram.destination == self.public(side);
                    let wire = self.wire(&bytes);
                    if open {
                        self.record(Step::Duplicate { to: side, wire });
                        self.handle(side, source, bytes);
                    } else {
                        self.record(Step::Closed { to: side, wire });
                    }
                }
            }
            4 => {
                let len = self.queues[side].len();
                if len > 0 {
                    self.deliver(side, (usize::from(arg) + 1).min(len - 1));
                }
            }
            5 => self.replay(input.next()),
            6 => {
                let (from, source) = match self.taken.last().filter(|_| arg & 2 != 0) {
                    Some(&taken) => (super::C, taken),
                    None => {
                        let from = 2 + usize::from(arg & 1);
                        (from, self.addresses[from])
                    }
                };
                self.spoof(side, from, source, input);
            }
            7 => {
                let unit = [
                    Duration::from_micros(100),
                    Duration::from_millis(1),
                    Duration::from_millis(10),
                    Duration::from_millis(100),
                ][usize::from(arg & 3)];
                let target = self.clock + unit * u32::from(input.next());
                self.advance_to(target);
            }
            8 => self.send(side, 1 - side, arg, input),
            9 => self.cancel(side, input.next()),
            10 => {
                if arg & 1 != 0 || arg & 3 == 0 {
                    let reading = !self.sides[side].reading;
                    self.sides[side].reading = reading;
                    self.record(Step::Reading { side, reading });
                }
                if arg & 2 != 0 {
                    let endpoint = &mut self.sides[side].endpoint;
                    let paused = !endpoint.is_receive_paused();
                    endpoint.set_receive_paused(paused);
                    self.record(Step::ReceivePaused { side, paused });
                }
            }
            11 => self.send(side, 2 + usize::from(arg & 1), arg & 6, input),
            12 => {
                let about = if arg & 1 == 0 {
                    1 - side
                } else {
                    2 + usize::from((arg >> 1) & 1)
                };
                let (now, address) = (self.now(), self.public(about));
                let failed = self.sides[side].endpoint.peer_unreachable(now, address);
                self.record(Step::Unreachable {
                    side,
                    about,
                    failed,
                });
                self.settle();
            }
            15 if arg & 1 == 1 => self.take_over(side),
            15 => {
                self.former[side] = Some(self.public(side));
                // A new public address, never one the attacker took over.
                loop {
                    // A new public port, never 0 (ports 1 and 2 are the
                    // first).
                    self.ports[side] = self.ports[side].wrapping_add(100).max(3);
                    if self.framing.roaming() {
                        // A new network too: the next `10.n.0.x`, never 0.
                        if let std::net::IpAddr::V4(ip) = self.ips[side] {
                            let [a, n, c, d] = ip.octets();
                            self.ips[side] = std::net::IpAddr::from([a, n % 250 + 1, c, d]);
                        }
                    }
                    if !self.taken.contains(&self.public(side)) {
                        break;
                    }
                }
                let port = self.ports[side];
                self.record(Step::Rebind { side, port });
            }
            _ => {
                for _ in 0..=arg {
                    if self.queues[side].is_empty() {
                        break;
                    }
                    self.deliver(side, 0);
                }
            }
        }
        // Timers due now run, as an adapter would run them.
        self.advance_to(self.clock);
    }

    /// `side` sends a new tagged message to the address `to`.
    pub(super) fn send(
        &mut self,
        side: usize,
        to: usize,
        options_bits: u8,
        input: &mut Bytes8<'_>,
    ) {
        let max_filler = self
            .config
            .max_message_size()
            .saturating_sub(TAG_LEN)
            .min(255);
        let filler = usize::from(input.next()) % (max_filler + 1);
        let now = self.now();
        let mut options = SendOptions::default();
        if options_bits != 0 {
            let byte = input.next();
            if options_bits & 1 != 0 {
                let ms = 4 * (1 + u64::from(byte & 0x3f));
                options.deadline = Some(now + Duration::from_millis(ms));
            }
            if options_bits & 2 != 0 {
                options.max_attempts = Some(1 + u32::from(byte >> 6) % self.config.max_attempts);
            }
            options.only_once_validated = options_bits & 4 != 0;
        }
        let seq = self.sides[side].next_seq;
        self.sides[side].next_seq += 1;
        let payload = tagged_payload(side, to, seq, filler);
        let destination = self.public(to);
        let result =
            self.sides[side]
                .endpoint
                .send_with(now, destination, payload.clone(), options);
        let id = match result {
            Ok(id) => {
                let state = &mut self.sides[side];
                let given_twice = state.sends.contains_key(&id);
                state.sends.insert(
                    id,
                    SendRecord {
                        seq,
                        to,
                        payload,
                        cancelled: false,
                        outcome: None,
                    },
                );
                state.ids.push(id);
                state.by_seq.insert(seq, id);
                if given_twice {
                    self.fail(format!("{} gave out {id} twice", NAMES[side]));
                }
                Some(id)
            }
            Err(error) => {
                if error.into_payload() != payload {
                    self.fail(format!(
                        "{} refused a send without handing its payload back",
                        NAMES[side]
                    ));
                }
                None
            }
        };
        self.record(Step::Send {
            side,
            to,
            seq,
            id,
            deadline: options
                .deadline
                .map(|deadline| deadline.saturating_duration_since(now)),
            max_attempts: options.max_attempts,
            once_validated: options.only_once_validated,
        });
        self.settle();
    }

    pub(super) fn cancel(&mut self, side: usize, choice: u8) {
        let state = &mut self.sides[side];
        let index = usize::from(choice) % (state.ids.len() + 1);
        let Some(&id) = state.ids.get(index) else {
            return;
        };
        let accepted = state.endpoint.cancel(id).is_ok();
        let resolved = state.sends.get(&id).is_some_and(|s| s.outcome.is_some());
        if accepted {
            if let Some(record) = state.sends.get_mut(&id) {
                record.cancelled = true;
            }
        }
        self.record(Step::Cancel { side, id, accepted });
        if accepted && resolved {
            self.fail(format!(
                "{}: cancel({id}) accepted after its outcome was polled",
                NAMES[side]
            ));
        }
        self.settle();
    }
}
