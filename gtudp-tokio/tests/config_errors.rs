//! Settings a user can get wrong end in typed errors, never in a panic.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use gtudp_tokio::{BindError, Builder, Config, Socket};

/// Polls `future` once, outside any runtime, with a waker that does
/// nothing: what a caller gets who awaits it on another executor.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut context = Context::from_waker(Waker::noop());
    pin!(future).poll(&mut context)
}

#[tokio::test]
async fn an_outstanding_limit_beyond_the_semaphore_is_refused() {
    let mut config = Config::default();
    config.limits.max_outstanding_messages = 1 << 61;
    let error = Socket::bind("127.0.0.1:0", config.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            BindError::TooLarge {
                field: "Config::limits.max_outstanding_messages",
                value,
                ..
            } if value == 1 << 61
        ),
        "{error:?}"
    );
    // A lower Builder limit is what applies, so the socket binds.
    let socket = Builder::new(config)
        .max_outstanding(1_000)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    socket.close().await.unwrap();
}

#[tokio::test]
async fn zero_capacities_are_refused() {
    for builder in [
        Builder::new(Config::default()).recv_queue(0),
        Builder::new(Config::default()).command_queue(0),
        Builder::new(Config::default()).max_outstanding(0),
    ] {
        let error = builder.bind("127.0.0.1:0").await.unwrap_err();
        assert!(matches!(error, BindError::ZeroCapacity { .. }), "{error:?}");
    }
}

#[test]
fn outside_a_runtime_from_std_is_an_error_not_a_panic() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let error = Socket::from_std(socket, Config::default()).unwrap_err();
    assert!(matches!(error, BindError::NoRuntime), "{error:?}");
    assert!(error.to_string().contains("Tokio runtime"));
}

#[test]
fn outside_a_runtime_bind_is_an_error_not_a_panic() {
    // The README promises `BindError::NoRuntime`; Tokio's own bind panics
    // outside a runtime. The check comes first, so the first poll answers.
    for outcome in [
        poll_once(Socket::bind("127.0.0.1:0", Config::default())),
        poll_once(Builder::new(Config::default()).bind("127.0.0.1:0")),
        // A name to look up would need the runtime's blocking pool too.
        poll_once(Socket::bind("localhost:0", Config::default())),
    ] {
        let Poll::Ready(Err(error)) = outcome else {
            panic!("bind outside a runtime did not fail at once");
        };
        assert!(matches!(error, BindError::NoRuntime), "{error:?}");
        assert!(error.to_string().contains("Tokio runtime"));
    }
}
