//! Keyword arguments to a [`Config`]: the original's `magic_numbers`,
//! `recv_from_any` and type identifiers, plus the knobs that matter
//! (attempts, timeouts, windows, limits). Every value is checked here or by
//! [`Config::validate`], and a bad one raises `TypeError` or `ValueError`
//! with the reason.

use std::time::Duration;

use gtudp_mio::Config;
use gtudp_proto::wire::Framing;
use gtudp_proto::LargeMessages;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::{type_error, value_error};

/// Received messages a socket holds for the application by default (the
/// Rust blocking socket's default).
const DEFAULT_RECEIVE_QUEUE: usize = 4_096;

/// The Python module's default `max_datagram_size`: one UDP datagram up to
/// the protocol's limit, as the original gtUDP sent (its plain socket lets
/// the kernel fragment what the path cannot carry whole; so do this
/// module's sockets, see `gtudp_io::Fragmentation`). The largest payload is
/// this less the header (5 bytes with the default framing, more with
/// `magic_numbers`). The Rust adapters keep 1,452, which no typical path
/// fragments.
pub(crate) const DEFAULT_MAX_DATAGRAM_SIZE: usize = gtudp_proto::MAX_UDP_PAYLOAD;

/// A validated configuration and the Python-side queue size.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) config: Config,
    /// Received messages held for `recvfrom` before the endpoint stops
    /// taking new ones (its senders then resend later).
    pub(crate) receive_queue: usize,
}

/// Every keyword [`settings`] takes, for the error on an unknown one.
const KNOWN: &[&str] = &[
    "frame_identifier",
    "recv_identifier",
    "ack_identifier",
    "max_attempts",
    "recv_max_attempts",
    "initial_rto",
    "min_rto",
    "max_rto",
    "remember_window",
    "datagram_lifetime",
    "peer_idle_timeout",
    "drain_timeout",
    "unreachable_grace",
    "recognise_copies_across_ports",
    "roaming",
    "max_datagram_size",
    "max_message_size",
    "fragment_identifier",
    "initial_window",
    "max_window",
    "max_peers",
    "max_outstanding_messages",
    "max_queued_per_peer",
    "max_awaiting_ack",
    "max_awaiting_ack_per_peer",
    "max_remembered_bytes",
    "max_unread",
    "receive_queue",
];

/// Builds the settings from the original's arguments and a dict of the
/// optional keywords (`None` values mean "the default").
pub(crate) fn settings(
    magic_numbers: &[u8],
    recv_from_any: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Settings> {
    let mut config = Config::default();
    config.deliver_foreign = recv_from_any;
    config.max_datagram_size = DEFAULT_MAX_DATAGRAM_SIZE;
    let mut settings = Settings {
        config,
        receive_queue: DEFAULT_RECEIVE_QUEUE,
    };
    let mut types = [
        settings
            .config
            .framing
            .type_bytes(gtudp_proto::wire::PacketKind::Data)
            .to_vec(),
        settings
            .config
            .framing
            .type_bytes(gtudp_proto::wire::PacketKind::Recv)
            .to_vec(),
        settings
            .config
            .framing
            .type_bytes(gtudp_proto::wire::PacketKind::Ack)
            .to_vec(),
    ];
    // The large-message extension: its two keywords apply together.
    let (mut large_size, mut fragment_type) = (None, None);
    let mut roaming = false;
    if let Some(options) = options {
        for (key, value) in options.iter() {
            let key: String = key
                .cast::<PyString>()
                .map_err(|_| type_error("option names must be strings"))?
                .to_cow()?
                .into_owned();
            if value.is_none() {
                if KNOWN.contains(&key.as_str()) {
                    continue;
                }
                return Err(unknown(&key));
            }
            match key.as_str() {
                "max_message_size" => large_size = Some(count(&key, &value)?),
                "fragment_identifier" => fragment_type = Some(identifier(&key, &value)?),
                "roaming" => roaming = flag(&key, &value)?,
                _ => apply(&mut settings, &mut types, &key, &value)?,
            }
        }
    }
    match (large_size, fragment_type) {
        (Some(size), fragment_type) => {
            let mut large = LargeMessages::default().with_max_message_size(size);
            if let Some(fragment_type) = fragment_type {
                large = large.with_fragment_type(&fragment_type);
            }
            settings.config.large_messages = Some(large);
        }
        (None, Some(_)) => {
            return Err(value_error(
                "fragment_identifier= needs max_message_size=, which turns large messages on",
            ))
        }
        (None, None) => {}
    }
    settings.config.framing =
        Framing::new(magic_numbers, &types[0], &types[1], &types[2]).map_err(value_error)?;
    if roaming {
        settings.config.framing = settings.config.framing.clone().with_roaming();
    }
    settings.config.validate().map_err(value_error)?;
    if settings.receive_queue == 0 {
        return Err(value_error("receive_queue is 0; it must be at least 1"));
    }
    Ok(settings)
}

fn apply(
    settings: &mut Settings,
    types: &mut [Vec<u8>; 3],
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let config = &mut settings.config;
    let limits = &mut config.limits;
    match key {
        "frame_identifier" => types[0] = identifier(key, value)?,
        "recv_identifier" => types[1] = identifier(key, value)?,
        "ack_identifier" => types[2] = identifier(key, value)?,
        "max_attempts" => config.max_attempts = count(key, value)?,
        "recv_max_attempts" => config.recv_max_attempts = count(key, value)?,
        "initial_rto" => config.initial_rto = seconds(key, value)?,
        "min_rto" => config.min_rto = seconds(key, value)?,
        "max_rto" => config.max_rto = seconds(key, value)?,
        "remember_window" => config.remember_window = seconds(key, value)?,
        "datagram_lifetime" => config.datagram_lifetime = seconds(key, value)?,
        "peer_idle_timeout" => config.peer_idle_timeout = seconds(key, value)?,
        "drain_timeout" => config.drain_timeout = seconds(key, value)?,
        "unreachable_grace" => config.unreachable_grace = seconds(key, value)?,
        "recognise_copies_across_ports" => config.recognise_copies_across_ports = flag(key, value)?,
        "max_datagram_size" => config.max_datagram_size = count(key, value)?,
        "initial_window" => config.initial_window = count(key, value)?,
        "max_window" => config.max_window = count(key, value)?,
        "max_peers" => limits.max_peers = count(key, value)?,
        "max_outstanding_messages" => limits.max_outstanding_messages = count(key, value)?,
        "max_queued_per_peer" => limits.max_queued_per_peer = count(key, value)?,
        "max_awaiting_ack" => limits.max_awaiting_ack = count(key, value)?,
        "max_awaiting_ack_per_peer" => limits.max_awaiting_ack_per_peer = count(key, value)?,
        "max_remembered_bytes" => limits.max_remembered_bytes = count(key, value)?,
        "max_unread" => limits.max_unread = count(key, value)?,
        "receive_queue" => settings.receive_queue = count(key, value)?,
        _ => return Err(unknown(key)),
    }
    Ok(())
}

fn unknown(key: &str) -> PyErr {
    type_error(format!(
        "unexpected keyword argument '{key}' (known: {})",
        KNOWN.join(", ")
    ))
}

fn identifier(key: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    value
        .cast::<PyBytes>()
        .map(|bytes| bytes.as_bytes().to_vec())
        .map_err(|_| type_error(format!("{key} must be bytes, not {}", type_name(value))))
}

/// A `bool`, and nothing else (not an int).
fn flag(key: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if !value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_error(format!(
            "{key} must be a bool, not {}",
            type_name(value)
        )));
    }
    value
        .extract()
        .map_err(|_| type_error(format!("{key} must be a bool")))
}

/// A non-negative integer of the field's type.
fn count<'py, T>(key: &str, value: &Bound<'py, PyAny>) -> PyResult<T>
where
    T: pyo3::conversion::FromPyObjectOwned<'py>,
{
    if value.is_instance_of::<pyo3::types::PyBool>()
        || !value.is_instance_of::<pyo3::types::PyInt>()
    {
        return Err(type_error(format!(
            "{key} must be an int, not {}",
            type_name(value)
        )));
    }
    value
        .extract::<T>()
        .map_err(|_| value_error(format!("{key} is out of range: {value}")))
}

/// A duration in seconds (int or float), as Python's APIs take them.
pub(crate) fn seconds(key: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = value.extract().map_err(|_| {
        type_error(format!(
            "{key} must be a number of seconds, not {}",
            type_name(value)
        ))
    })?;
    duration(key, secs)
}

/// `secs` as a duration, refusing negative, NaN and infinite values.
pub(crate) fn duration(key: &str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        value_error(format!(
            "{key} must be a finite, non-negative number of seconds, not {secs}"
        ))
    })
}

/// The Python type name of `value`, for error messages.
pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}
