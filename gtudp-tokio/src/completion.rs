//! Where the task that learns a send's outcome leaves it for its [`Delivery`]: the
//! shared registry ([`gtudp_io::completion`]), one per socket, whose
//! waiters are the tasks polling each `Delivery`.
//!
//! [`Delivery`]: crate::Delivery

use gtudp_io::completion::{self, TaskWake};

pub(crate) use gtudp_io::completion::Key;

/// Every send's outcome slot, shared by a socket's handles and its state.
pub(crate) type Completions = completion::Registry<TaskWake>;

/// The resolving side of one send's slot, kept with the pending send.
pub(crate) type Completion = completion::Completion<TaskWake>;
