//! Encoding and decoding the sender's requests.

use super::*;

impl<'a> Request<'a> {
    /// Writes the message body.
    pub fn encode(&self, w: &mut impl Put) {
        match *self {
            Request::Query => header(w, kind::QUERY),
            Request::Begin {
                session,
                container_len,
                head,
            } => {
                Self::begin_header(w, session, container_len, head.len());
                w.put(head);
            }
            Request::Data {
                session,
                offset,
                bytes,
            } => {
                Self::data_header(w, session, offset, bytes.len());
                w.put(bytes);
            }
            Request::Commit { session } => {
                header(w, kind::COMMIT);
                put_u16(w, session);
            }
            Request::Reset { session } => {
                header(w, kind::RESET);
                put_u16(w, session);
            }
        }
    }

    /// The first [`BEGIN_OVERHEAD`] bytes of a `Begin` message with a head of `head_len` bytes.
    pub fn begin_header(w: &mut impl Put, session: u16, container_len: u32, head_len: usize) {
        header(w, kind::BEGIN);
        put_u16(w, session);
        put_u32(w, container_len);
        put_u16(w, u16::try_from(head_len).unwrap_or(0));
    }

    /// The first [`DATA_OVERHEAD`] bytes of a `Data` message of `len` bytes, for senders that
    /// write the payload straight from their source.
    pub fn data_header(w: &mut impl Put, session: u16, offset: u32, len: usize) {
        header(w, kind::DATA);
        put_u16(w, session);
        put_u32(w, offset);
        put_u16(w, u16::try_from(len).unwrap_or(0));
    }

    /// Parses a body. Fails with [`Error::WrongDirection`] on a reply.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let k = start(&mut r)?;
        let request = match k {
            kind::QUERY => Request::Query,
            kind::BEGIN => {
                let session = take_u16(&mut r)?;
                let container_len = take_u32(&mut r)?;
                let len = usize::from(take_u16(&mut r)?);
                if len == 0 || len > MAX_HEAD_LEN {
                    return Err(Error::InvalidField);
                }
                let head = r.take(len)?;
                if u32::try_from(len).map_or(true, |l| l > container_len) {
                    return Err(Error::InvalidField);
                }
                Request::Begin {
                    session,
                    container_len,
                    head,
                }
            }
            kind::DATA => {
                let session = take_u16(&mut r)?;
                let offset = take_u32(&mut r)?;
                let len = take_u16(&mut r)?;
                if len == 0 || offset.checked_add(u32::from(len)).is_none() {
                    return Err(Error::InvalidField);
                }
                let bytes = r.take(usize::from(len))?;
                Request::Data {
                    session,
                    offset,
                    bytes,
                }
            }
            kind::COMMIT => Request::Commit {
                session: take_u16(&mut r)?,
            },
            kind::RESET => Request::Reset {
                session: take_u16(&mut r)?,
            },
            k if k & kind::REPLY != 0 => return Err(Error::WrongDirection),
            k => return Err(Error::UnknownKind(k)),
        };
        finish(&r, request)
    }
}
