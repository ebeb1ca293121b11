//! Where whichever thread resolves a send (the one driving the endpoint at
//! that moment) leaves its outcome for its [`PendingSend`]: the shared
//! registry ([`gtudp_io::completion`]), one per socket, with a condition
//! variable per slot for the thread waiting on each `PendingSend`.
//!
//! [`PendingSend`]: crate::PendingSend

use gtudp_io::completion::{self, CondvarWake};

pub(crate) use gtudp_io::completion::Key;

/// Every send's outcome slot, shared by a socket's handle, its pending
/// sends and its background thread.
pub(crate) type Completions = completion::Registry<CondvarWake>;

/// The resolving side of one send's slot, kept with the pending message.
pub(crate) type Completion = completion::Completion<CondvarWake>;
