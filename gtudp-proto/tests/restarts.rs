//! A sender restarting on the same address draws identities afresh; the
//! receiver still remembers the old ones. With payload fingerprints, no new
//! message is mistaken for a duplicate.

use gtudp_proto::sim::RestartProbe;

#[test]
fn restarted_senders_lose_no_message_to_identity_collisions() {
    // 600,000 messages at 1 M/s: the receiver remembers every one (its
    // lifetime is 2 s), so each new identity repeats a remembered one with
    // probability remembered / 2^32 (about 40 collisions expected here).
    let probe = RestartProbe {
        messages: 600_000,
        restart_every: 30_000,
        rate: 1_000_000,
        seed: 3,
    };
    let report = probe.run().expect("default config");
    assert_eq!(report.restarts, 19);
    assert_eq!(report.delivered, 600_000, "{report:?}");
    assert_eq!((report.lost, report.duplicates), (0, 0), "{report:?}");
    assert_eq!(report.handed_over, 600_000);
    assert!(
        report.identity_collisions > 10,
        "the run must exercise collisions: {report:?}"
    );
}
