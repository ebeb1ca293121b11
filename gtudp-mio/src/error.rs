//! Errors of the driver's and the blocking socket's operations: the types
//! both adapters share.

pub use gtudp_io::{BindError, Closed, DeliveryError, RecvError};
