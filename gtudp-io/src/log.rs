//! The per-datagram debug log.

use core::fmt;
use std::net::SocketAddr;

use gtudp_proto::wire::{Framing, Packet};

/// Logs one datagram at debug level, target `gtudp`: the local socket's
/// address, direction (`"in"` or `"out"`), kind (DATA, RECV, ACK; RAW for
/// an unframed datagram sent, FOREIGN for one received), identity in hex,
/// peer, size and a preview of the payload (the successor of the original's
/// `debug=True`).
///
/// Parses the datagram with `framing`, so callers on a hot path check
/// `tracing::enabled!(target: "gtudp", tracing::Level::DEBUG)` first.
pub fn log_datagram(
    direction: &'static str,
    local: SocketAddr,
    peer: SocketAddr,
    datagram: &[u8],
    framing: &Framing,
) {
    let size = datagram.len();
    match framing.parse(datagram) {
        Ok(packet) => {
            let payload = match packet {
                Packet::Data { payload, .. } => payload,
                _ => &[],
            };
            tracing::debug!(
                target: "gtudp",
                %local,
                direction,
                kind = packet.kind().name(),
                identity = %packet.identity(),
                %peer,
                size,
                payload = %PayloadPreview(payload),
                "datagram"
            )
        }
        Err(reason) => tracing::debug!(
            target: "gtudp",
            %local,
            direction,
            kind = if direction == "out" { "RAW" } else { "FOREIGN" },
            ?reason,
            %peer,
            size,
            payload = %PayloadPreview(datagram),
            "datagram"
        ),
    }
}

/// Whether [`log_datagram`] would write anything.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "gtudp", tracing::Level::DEBUG)
}

/// A payload as a byte-string literal (`b'hi\x00'`, as Python writes
/// one), cut after [`PayloadPreview::MAX_BYTES`] bytes with `...`, so a
/// log line stays short whatever the datagram carries.
#[derive(Clone, Copy, Debug)]
pub struct PayloadPreview<'a>(pub &'a [u8]);

impl PayloadPreview<'_> {
    /// Bytes shown before the preview is cut.
    pub const MAX_BYTES: usize = 64;
}

impl fmt::Display for PayloadPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(Self::MAX_BYTES)];
        f.write_str("b'")?;
        for &byte in shown {
            match byte {
                b'\'' => f.write_str("\\'")?,
                b'\\' => f.write_str("\\\\")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                0x20..=0x7e => f.write_fmt(format_args!("{}", byte as char))?,
                _ => write!(f, "\\x{byte:02x}")?,
            }
        }
        f.write_str("'")?;
        if shown.len() < self.0.len() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::PayloadPreview;

    #[test]
    fn preview_escapes_like_a_python_bytes_literal_and_cuts_long_payloads() {
        assert_eq!(
            PayloadPreview(b"it's\n\x00\xff\\").to_string(),
            r"b'it\'s\n\x00\xff\\'"
        );
        let long = [b'a'; 100];
        let shown = PayloadPreview(&long).to_string();
        assert!(shown.ends_with("'..."), "{shown}");
        assert_eq!(shown.len(), "b''...".len() + PayloadPreview::MAX_BYTES);
    }
}
