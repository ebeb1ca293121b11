//! Counters and close summaries as Python dicts, with the Rust field names.

use std::time::Duration;

use gtudp_mio::{CloseSummary, EndpointStats, IoStats, PeerStats, Stats};
use gtudp_proto::{DropCounts, InvalidCounts, KindCounts};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Sets `dict[name] = value.name` for each named field.
macro_rules! fields {
    ($dict:expr, $value:expr, [$($field:ident),* $(,)?]) => {{
        $( $dict.set_item(stringify!($field), $value.$field)?; )*
    }};
}

/// The endpoint's counters: datagrams by kind in and out, bytes,
/// retransmissions, duplicates suppressed, delivered, failed, drops by cause.
pub(crate) fn endpoint<'py>(
    py: Python<'py>,
    stats: &EndpointStats,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("datagrams_in", kinds(py, &stats.datagrams_in)?)?;
    dict.set_item("datagrams_out", kinds(py, &stats.datagrams_out)?)?;
    fields!(dict, stats, [raw_out, bytes_in, bytes_out]);
    dict.set_item("invalid", invalid(py, &stats.invalid)?)?;
    fields!(
        dict,
        stats,
        [
            foreign_delivered,
            retransmissions,
            spurious_retransmissions,
            loss_detected_early,
            tail_loss_probes,
            retransmission_timeouts,
            recv_retransmissions,
            recv_copies_sent,
            recv_copies_received,
            duplicates_suppressed,
            rebound_duplicates,
            peer_moves,
            received,
            delivered,
            failed,
            peers_evicted,
            unvalidated_peers_evicted,
            data_held_for_validation,
            held_data_taken,
            validation_probes,
            validated_by_probe,
            resent_for_probe,
            unreachable_suspected,
            unreachable_recovered,
            too_large_reports,
        ]
    );
    dict.set_item("dropped", dropped(py, &stats.dropped)?)?;
    Ok(dict)
}

/// The blocking socket's counters: the endpoint's, plus `io` (system calls,
/// batches, ICMP reports, errors).
pub(crate) fn socket<'py>(py: Python<'py>, stats: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let dict = endpoint(py, &stats.endpoint)?;
    dict.set_item("io", io(py, &stats.io)?)?;
    Ok(dict)
}

/// What a close did: `delivered` and `failed` over the socket's life,
/// `drained_delivered`, `drained_failed` and `abandoned` while draining,
/// `deadline_reached`, `elapsed` seconds, the final `stats`, and whether the
/// drain had ended (`complete`) or the caller stopped waiting for it.
pub(crate) fn summary<'py>(
    py: Python<'py>,
    summary: &CloseSummary,
    complete: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("complete", complete)?;
    fields!(
        dict,
        summary,
        [
            delivered,
            failed,
            drained_delivered,
            drained_failed,
            abandoned,
            deadline_reached
        ]
    );
    dict.set_item("elapsed", secs(summary.elapsed))?;
    dict.set_item("stats", socket(py, &summary.stats)?)?;
    Ok(dict)
}

/// One peer's counters and path estimates (`rtt` and `rto` in seconds,
/// `rtt` `None` until measured).
pub(crate) fn peer<'py>(py: Python<'py>, stats: &PeerStats) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("datagrams_in", kinds(py, &stats.datagrams_in)?)?;
    dict.set_item("datagrams_out", kinds(py, &stats.datagrams_out)?)?;
    fields!(dict, stats, [bytes_in, bytes_out]);
    dict.set_item("invalid", invalid(py, &stats.invalid)?)?;
    fields!(
        dict,
        stats,
        [
            retransmissions,
            spurious_retransmissions,
            loss_detected_early,
            duplicates_suppressed,
            received,
            delivered,
            failed,
            window,
            in_flight,
            queued,
            validated
        ]
    );
    dict.set_item("rtt", stats.rtt.map(secs))?;
    dict.set_item("rto", secs(stats.rto))?;
    Ok(dict)
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn kinds<'py>(py: Python<'py>, counts: &KindCounts) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    fields!(dict, counts, [data, recv, ack]);
    Ok(dict)
}

fn invalid<'py>(py: Python<'py>, counts: &InvalidCounts) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    fields!(
        dict,
        counts,
        [too_short, wrong_magic, unknown_type, wrong_length]
    );
    Ok(dict)
}

fn dropped<'py>(py: Python<'py>, counts: &DropCounts) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    fields!(
        dict,
        counts,
        [
            data_unanswered_full,
            data_unanswered_closing,
            data_unanswered_paused,
            data_deferred_unvalidated,
            recv_wrong_source,
            recv_unknown,
            ack_unknown,
            foreign,
            control_overflow,
            amplification_limited,
            after_close,
        ]
    );
    Ok(dict)
}

fn io<'py>(py: Python<'py>, counts: &IoStats) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    fields!(
        dict,
        counts,
        [
            recv_calls,
            datagrams_received,
            send_calls,
            datagrams_sent,
            batched_sends,
            send_would_block,
            icmp_errors,
            unreachable_reports,
            recv_errors,
            send_errors,
            too_large,
        ]
    );
    Ok(dict)
}
