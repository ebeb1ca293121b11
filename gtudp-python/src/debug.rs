//! `debug=True`: one line per datagram on standard output, as the original
//! printed them (direction, kind, identity in hex, payload), plus the peer:
//!
//! ```text
//! OUT FRAME 3f9a0c12 b'hello' to 127.0.0.1:4323
//! IN  RECV  3f9a0c12 from 127.0.0.1:4323
//! OUT ACK   3f9a0c12 to 127.0.0.1:4323
//! ```
//!
//! The kinds keep the original's names (`FRAME` for DATA, `!?!!` for a
//! datagram that is not gtUDP) so its users read them as before; `RAW` is a
//! datagram sent with `sendto_raw`.
//!
//! The blocking socket's datagrams pass through the I/O layer's `tracing`
//! events (target `gtudp`); [`Printer`] is the process's subscriber for
//! them, and prints only those of sockets created with `debug=True`
//! (a [`Watch`] each). The asyncio endpoint formats its datagrams itself
//! with [`line`].

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use gtudp_io::PayloadPreview;
use gtudp_proto::wire::{Framing, Packet, PacketKind};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// Sockets with `debug=True` alive now; the printer does nothing while 0.
static WATCHING: AtomicUsize = AtomicUsize::new(0);

/// Local addresses of the sockets with `debug=True` (one entry per socket,
/// so two sockets on one address come and go independently).
static WATCHED: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());

/// Installs [`Printer`] as the `tracing` subscriber of this extension
/// module. Its `tracing` is the module's own copy, so no other library's
/// logging is affected; without a watched socket the printer is disabled.
pub(crate) fn install() {
    let _ = tracing::subscriber::set_global_default(Printer);
}

/// Keeps one socket's datagrams printed while it lives.
#[derive(Debug)]
pub(crate) struct Watch {
    local: SocketAddr,
}

impl Watch {
    /// Prints the datagrams of the socket bound to `local` from now on.
    pub(crate) fn new(local: SocketAddr) -> Self {
        watched().push(local);
        WATCHING.fetch_add(1, Ordering::Release);
        Watch { local }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = watched();
        if let Some(at) = watched.iter().position(|local| *local == self.local) {
            watched.swap_remove(at);
        }
        WATCHING.fetch_sub(1, Ordering::Release);
    }
}

fn watched() -> MutexGuard<'static, Vec<SocketAddr>> {
    WATCHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The line for a datagram `framing` parses (or fails to) in `direction`
/// (`"in"` or `"out"`).
pub(crate) fn line(
    direction: &str,
    peer: SocketAddr,
    datagram: &[u8],
    framing: &Framing,
) -> String {
    let (kind, identity, payload) = match framing.parse(datagram) {
        Ok(packet) => {
            let payload = match packet {
                Packet::Data { payload, .. } => Some(payload),
                _ => None,
            };
            (
                kind_name(packet.kind().name()),
                Some(packet.identity().to_string()),
                payload.map(|payload| PayloadPreview(payload).to_string()),
            )
        }
        Err(_) => (
            kind_name(if direction == "out" { "RAW" } else { "FOREIGN" }),
            None,
            Some(PayloadPreview(datagram).to_string()),
        ),
    };
    format_line(
        direction,
        kind,
        identity.as_deref(),
        payload.as_deref(),
        &peer.to_string(),
    )
}

/// The original's names: `FRAME` for DATA, `!?!!` for what is not gtUDP.
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "DATA" => "FRAME",
        "RECV" => PacketKind::Recv.name(),
        "ACK" => PacketKind::Ack.name(),
        "RAW" => "RAW",
        _ => "!?!!",
    }
}

fn format_line(
    direction: &str,
    kind: &str,
    identity: Option<&str>,
    payload: Option<&str>,
    peer: &str,
) -> String {
    let (direction, preposition) = if direction == "out" {
        ("OUT", "to")
    } else {
        ("IN", "from")
    };
    let mut line = format!(
        "{direction:<3} {kind:<5} {}",
        identity.unwrap_or("--------")
    );
    if let Some(payload) = payload {
        let _ = write!(line, " {payload}");
    }
    let _ = write!(line, " {preposition} {peer}");
    line
}

/// The `tracing` subscriber that prints watched sockets' datagrams.
struct Printer;

impl Subscriber for Printer {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target() == "gtudp" && *metadata.level() == Level::DEBUG {
            // Decided per event: sockets start and stop watching.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "gtudp"
            && *metadata.level() == Level::DEBUG
            && WATCHING.load(Ordering::Acquire) > 0
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message != "datagram" || !fields.is_watched() {
            return;
        }
        let line = format_line(
            &fields.direction,
            kind_name(&fields.kind),
            (!fields.identity.is_empty()).then_some(fields.identity.as_str()),
            (fields.kind == "DATA" || fields.kind == "RAW" || fields.kind == "FOREIGN")
                .then_some(fields.payload.as_str()),
            &fields.peer,
        );
        // Standard output is shared with Python's `print`, which the
        // socket's thread must not call (it cannot take the GIL safely at
        // interpreter exit); a line is written whole.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// The fields of one datagram event.
#[derive(Default)]
struct Fields {
    message: String,
    direction: String,
    kind: String,
    identity: String,
    peer: String,
    payload: String,
    /// The socket's local address, when the event names it.
    local: Option<String>,
}

impl Fields {
    /// Whether the event comes from a socket with `debug=True`: by the
    /// local address it names, or else by its thread (named `gtudp
    /// <local address>` by the blocking socket).
    fn is_watched(&self) -> bool {
        let watched = watched();
        match &self.local {
            Some(local) => watched.iter().any(|addr| addr.to_string() == *local),
            None => {
                let thread = std::thread::current();
                let Some(name) = thread.name() else {
                    return false;
                };
                watched
                    .iter()
                    .any(|addr| name.strip_prefix("gtudp ") == Some(addr.to_string().as_str()))
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl Fields {
    fn set(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "direction" => self.direction = value,
            "kind" => self.kind = value,
            "identity" => self.identity = value,
            "peer" => self.peer = value,
            "payload" => self.payload = value,
            "local" => self.local = Some(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_kinds_as_the_original_did() {
        let framing = Framing::default();
        let peer: SocketAddr = "127.0.0.1:4323".parse().unwrap();
        assert_eq!(
            line(
                "out",
                peer,
                &[0x1d, 0x12, 0x34, 0x56, 0x7a, b'h', b'i'],
                &framing
            ),
            "OUT FRAME 1234567a b'hi' to 127.0.0.1:4323"
        );
        assert_eq!(
            line("in", peer, &[0x5f, 0x12, 0x34, 0x56, 0x7a], &framing),
            "IN  RECV  1234567a from 127.0.0.1:4323"
        );
        assert_eq!(
            line("in", peer, b"hello", &framing),
            "IN  !?!!  -------- b'hello' from 127.0.0.1:4323"
        );
        assert_eq!(
            line("out", peer, b"", &framing),
            "OUT RAW   -------- b'' to 127.0.0.1:4323"
        );
    }
}
