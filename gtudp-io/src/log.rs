//! The per-datagram debug log.

use std::net::SocketAddr;

use gtudp_proto::wire::Framing;

/// Logs one datagram at debug level, target `gtudp`: the local socket's
/// address, direction (`"in"` or `"out"`), kind (DATA, RECV, ACK; RAW for an unframed datagram sent,
/// FOREIGN for one received), identity in hex, peer and size (the successor
/// of the original's `debug=True`).
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
        Ok(packet) => tracing::debug!(
            target: "gtudp",
            %local,
            direction,
            kind = packet.kind().name(),
            identity = %packet.identity(),
            %peer,
            size,
            "datagram"
        ),
        Err(reason) => tracing::debug!(
            target: "gtudp",
            %local,
            direction,
            kind = if direction == "out" { "RAW" } else { "FOREIGN" },
            ?reason,
            %peer,
            size,
            "datagram"
        ),
    }
}

/// Whether [`log_datagram`] would write anything.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "gtudp", tracing::Level::DEBUG)
}
