//! Where the driver leaves each send's outcome for its [`Delivery`]: the
//! shared registry ([`gtudp_io::completion`]), one per socket, whose
//! waiters are the tasks polling each `Delivery`.
//!
//! [`Delivery`]: crate::Delivery

use gtudp_io::completion::{self, TaskWake};

pub(crate) use gtudp_io::completion::Key;

/// Every send's outcome slot, shared by a socket's handles and its driver.
pub(crate) type Completions = completion::Registry<TaskWake>;

/// The driver's side of one send's slot.
pub(crate) type Completion = completion::Completion<TaskWake>;
