//! Encoding and decoding the device's replies.

use super::*;

impl Reply {
    /// Writes the message body.
    pub fn encode(&self, w: &mut impl Put) {
        match self {
            Reply::Hello(hello) => {
                header(w, kind::HELLO);
                hello.encode(w);
            }
            Reply::Accepted {
                session,
                id,
                resume_from,
                erase_total,
            } => {
                header(w, kind::ACCEPTED);
                put_u16(w, *session);
                w.put(&id.0);
                put_u32(w, *resume_from);
                put_u32(w, *erase_total);
            }
            Reply::Erasing {
                session,
                done,
                total,
            } => {
                header(w, kind::ERASING);
                put_u16(w, *session);
                put_u32(w, *done);
                put_u32(w, *total);
            }
            Reply::Ack {
                session,
                received,
                durable,
            } => {
                header(w, kind::ACK);
                put_u16(w, *session);
                put_u32(w, *received);
                put_u32(w, *durable);
            }
            Reply::Nak { session, expected } => {
                header(w, kind::NAK);
                put_u16(w, *session);
                put_u32(w, *expected);
            }
            Reply::Committed {
                session,
                outcome,
                id,
            } => {
                header(w, kind::COMMITTED);
                put_u16(w, *session);
                put_u8(w, outcome.code());
                w.put(&id.0);
            }
            Reply::Error { session, reason } => {
                header(w, kind::ERROR);
                put_u16(w, *session);
                put_u16(w, reason.code.0);
                let text = reason.text.as_bytes();
                put_u8(w, u8::try_from(text.len()).unwrap_or(0));
                w.put(text);
            }
            Reply::Resetting { session } => {
                header(w, kind::RESETTING);
                put_u16(w, *session);
            }
        }
    }

    /// Parses a body. Fails with [`Error::WrongDirection`] on a request.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let k = start(&mut r)?;
        let reply = match k {
            kind::HELLO => Reply::Hello(Hello::parse(&mut r)?),
            kind::ACCEPTED => Reply::Accepted {
                session: take_u16(&mut r)?,
                id: ContainerId(r.take_array()?),
                resume_from: take_u32(&mut r)?,
                erase_total: take_u32(&mut r)?,
            },
            kind::ERASING => {
                let session = take_u16(&mut r)?;
                let done = take_u32(&mut r)?;
                let total = take_u32(&mut r)?;
                if done > total {
                    return Err(Error::InvalidField);
                }
                Reply::Erasing {
                    session,
                    done,
                    total,
                }
            }
            kind::ACK => {
                let session = take_u16(&mut r)?;
                let received = take_u32(&mut r)?;
                let durable = take_u32(&mut r)?;
                if durable > received {
                    return Err(Error::InvalidField);
                }
                Reply::Ack {
                    session,
                    received,
                    durable,
                }
            }
            kind::NAK => Reply::Nak {
                session: take_u16(&mut r)?,
                expected: take_u32(&mut r)?,
            },
            kind::COMMITTED => {
                let session = take_u16(&mut r)?;
                let outcome = match take_u8(&mut r)? {
                    1 => Outcome::Pending,
                    2 => Outcome::Installed,
                    _ => return Err(Error::InvalidField),
                };
                Reply::Committed {
                    session,
                    outcome,
                    id: ContainerId(r.take_array()?),
                }
            }
            kind::ERROR => {
                let session = take_u16(&mut r)?;
                let code = ErrorCode(take_u16(&mut r)?);
                let len = usize::from(take_u8(&mut r)?);
                if len > MAX_TEXT_LEN {
                    return Err(Error::InvalidText);
                }
                let text = Text::from_bytes(r.take(len)?)?;
                Reply::Error {
                    session,
                    reason: Refusal { code, text },
                }
            }
            kind::RESETTING => Reply::Resetting {
                session: take_u16(&mut r)?,
            },
            k if k & kind::REPLY == 0 => return Err(Error::WrongDirection),
            k => return Err(Error::UnknownKind(k)),
        };
        finish(&r, reply)
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
