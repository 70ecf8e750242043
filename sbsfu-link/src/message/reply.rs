//! Encoding and decoding the device's replies.
//!
//! Each reply's fields are listed once, in wire order, in the `replies!` table below: `encode`
//! writes that list and `parse` reads it, so the two cannot drift apart. How one field is
//! written and read is its [`Field`] impl; the rules between fields are [`Reply::check`].

use super::*;

/// A reply field: written and read by one impl, wherever it stands.
trait Field: Sized {
    fn put(&self, w: &mut impl Put);
    fn take(r: &mut Reader<'_>) -> Result<Self, Error>;
}

impl Field for u16 {
    fn put(&self, w: &mut impl Put) {
        put_u16(w, *self);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, Error> {
        take_u16(r)
    }
}

impl Field for u32 {
    fn put(&self, w: &mut impl Put) {
        put_u32(w, *self);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, Error> {
        take_u32(r)
    }
}

impl Field for ContainerId {
    fn put(&self, w: &mut impl Put) {
        w.put(&self.0);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(ContainerId(r.take_array()?))
    }
}

impl Field for Outcome {
    fn put(&self, w: &mut impl Put) {
        put_u8(w, self.code());
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, Error> {
        let code = take_u8(r)?;
        [Outcome::Pending, Outcome::Installed]
            .into_iter()
            .find(|o| o.code() == code)
            .ok_or(Error::InvalidField)
    }
}

/// The code, then the text behind a one-byte length of at most [`MAX_TEXT_LEN`].
impl Field for Refusal {
    fn put(&self, w: &mut impl Put) {
        put_u16(w, self.code.0);
        let text = self.text.as_bytes();
        put_u8(w, u8::try_from(text.len()).unwrap_or(0));
        w.put(text);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, Error> {
        let code = ErrorCode(take_u16(r)?);
        let len = usize::from(take_u8(r)?);
        if len > MAX_TEXT_LEN {
            return Err(Error::InvalidText);
        }
        let text = Text::from_bytes(r.take(len)?)?;
        Ok(Refusal { code, text })
    }
}

impl Field for Hello {
    fn put(&self, w: &mut impl Put) {
        self.encode(w);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, Error> {
        Hello::parse(r)
    }
}

/// `Reply::encode` and `Reply::parse` from one table of `kind => Variant { fields in wire order }`.
macro_rules! replies {
    (@bind $variant:ident { $($field:ident),* }) => { Reply::$variant { $($field),* } };
    (@bind $variant:ident ($field:ident)) => { Reply::$variant($field) };
    (@put $w:ident { $($field:ident),* }) => { $(Field::put($field, $w);)* };
    (@put $w:ident ($field:ident)) => { Field::put($field, $w) };
    // Struct fields are evaluated in the order written: the wire order.
    (@take $r:ident $variant:ident { $($field:ident),* }) => {
        Reply::$variant { $($field: Field::take(&mut $r)?),* }
    };
    (@take $r:ident $variant:ident ($field:ident)) => { Reply::$variant(Field::take(&mut $r)?) };
    ($($kind:path => $variant:ident $fields:tt,)*) => {
        impl Reply {
            /// Writes the message body.
            pub fn encode(&self, w: &mut impl Put) {
                match self {
                    $(replies!(@bind $variant $fields) => {
                        header(w, $kind);
                        replies!(@put w $fields);
                    })*
                }
            }

            /// Parses a body. Fails with [`Error::WrongDirection`] on a request.
            pub fn parse(body: &[u8]) -> Result<Self, Error> {
                let mut r = Reader::new(body);
                let reply = match start(&mut r)? {
                    $($kind => replies!(@take r $variant $fields),)*
                    k if k & kind::REPLY == 0 => return Err(Error::WrongDirection),
                    k => return Err(Error::UnknownKind(k)),
                };
                reply.check()?;
                finish(&r, reply)
            }
        }
    };
}

replies! {
    kind::HELLO => Hello(hello),
    kind::ACCEPTED => Accepted { session, id, resume_from, erase_total },
    kind::ERASING => Erasing { session, done, total },
    kind::ACK => Ack { session, received, durable },
    kind::NAK => Nak { session, expected },
    kind::COMMITTED => Committed { session, outcome, id },
    kind::ERROR => Error { session, reason },
    kind::RESETTING => Resetting { session },
}

impl Reply {
    /// The rules between a reply's fields: erase progress stays within its total, and no more
    /// is durable than was received.
    fn check(&self) -> Result<(), Error> {
        match *self {
            Reply::Erasing { done, total, .. } if done > total => Err(Error::InvalidField),
            Reply::Ack {
                received, durable, ..
            } if durable > received => Err(Error::InvalidField),
            _ => Ok(()),
        }
    }

    /// The session this reply is about (none for `Hello`).
    pub fn session(&self) -> Option<u16> {
        match *self {
            Reply::Hello(_) => None,
            Reply::Accepted { session, .. }
            | Reply::Erasing { session, .. }
            | Reply::Ack { session, .. }
            | Reply::Nak { session, .. }
            | Reply::Committed { session, .. }
            | Reply::Error { session, .. }
            | Reply::Resetting { session } => Some(session),
        }
    }
}
