//! What both adapters accept as a message: [`IntoPayload`].

use bytes::{Bytes, BytesMut};

/// Anything a send takes as its payload, like the `&[u8]` of
/// `std::net::UdpSocket::send_to`: [`Bytes`] (moved, no copy, and
/// `Bytes::from_static` for `&'static` data without a copy), `Vec<u8>`,
/// `Box<[u8]>`, `String` and [`BytesMut`] (moved), or borrowed bytes
/// (`&[u8]`, `&[u8; N]`, `&Vec<u8>`, `&str`, copied once, as the message
/// must outlive the call).
pub trait IntoPayload {
    /// The payload as the endpoint holds it.
    fn into_payload(self) -> Bytes;
}

impl IntoPayload for Bytes {
    fn into_payload(self) -> Bytes {
        self
    }
}

impl IntoPayload for &Bytes {
    /// A reference-counted clone, no copy.
    fn into_payload(self) -> Bytes {
        self.clone()
    }
}

impl IntoPayload for BytesMut {
    fn into_payload(self) -> Bytes {
        self.freeze()
    }
}

impl IntoPayload for Vec<u8> {
    fn into_payload(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoPayload for Box<[u8]> {
    fn into_payload(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoPayload for String {
    fn into_payload(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoPayload for &[u8] {
    fn into_payload(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> IntoPayload for &[u8; N] {
    fn into_payload(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoPayload for &Vec<u8> {
    fn into_payload(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoPayload for &str {
    fn into_payload(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_form_gives_the_same_bytes_and_owned_ones_are_not_copied() {
        let expected = Bytes::from_static(b"hello");
        let borrowed = vec![b'h', b'e', b'l', b'l', b'o'];
        assert_eq!(b"hello".into_payload(), expected);
        assert_eq!((&b"hello"[..]).into_payload(), expected);
        assert_eq!("hello".into_payload(), expected);
        assert_eq!((&borrowed).into_payload(), expected);
        assert_eq!(String::from("hello").into_payload(), expected);
        let owned = borrowed.clone();
        let at = owned.as_ptr();
        let moved = owned.into_payload();
        assert_eq!(moved, expected);
        assert_eq!(moved.as_ptr(), at, "a Vec is moved, not copied");
        let shared = expected.clone();
        assert_eq!((&shared).into_payload().as_ptr(), expected.as_ptr());
    }
}
