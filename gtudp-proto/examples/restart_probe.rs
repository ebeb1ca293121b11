//! Senders restarting on one address against one receiver: every message
//! must be handed over, although identities repeat across restarts.
//!
//! ```text
//! cargo run --release -p gtudp-proto --features sim --example restart_probe -- \
//!     [--messages 100000000] [--restart-every 30000] [--rate 1000000] [--seed 1]
//! ```
//!
//! The last line is `messages=N restarts=R delivered=D handed_over=H
//! identity_collisions=C lost=L duplicates=X remembered=M`.

use std::process::ExitCode;

use gtudp_proto::sim::RestartProbe;

fn main() -> ExitCode {
    let mut probe = RestartProbe {
        messages: 100_000_000,
        restart_every: 30_000,
        rate: 1_000_000,
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        let (Some(value), slot) = (
            value,
            match flag.as_str() {
                "--messages" => &mut probe.messages,
                "--restart-every" => &mut probe.restart_every,
                "--rate" => &mut probe.rate,
                "--seed" => &mut probe.seed,
                _ => {
                    eprintln!("restart_probe: unknown argument {flag}");
                    return ExitCode::FAILURE;
                }
            },
        ) else {
            eprintln!("restart_probe: {flag} needs a number");
            return ExitCode::FAILURE;
        };
        *slot = value.max(1);
    }
    let report = match probe.run() {
        Ok(report) => report,
        Err(error) => {
            eprintln!("restart_probe: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "messages={} restarts={} delivered={} handed_over={} identity_collisions={} lost={} duplicates={} remembered={}",
        report.messages,
        report.restarts,
        report.delivered,
        report.handed_over,
        report.identity_collisions,
        report.lost,
        report.duplicates,
        report.remembered
    );
    if report.lost == 0 && report.duplicates == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
