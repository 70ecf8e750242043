//! Where a container starts or resumes, and the erase ahead of its data.

use sbsfu_format::{PREFIX_LEN, PayloadLayout, SIGNATURE_LEN};

use super::record::{Head, Stored};
use super::{RegionBegun, RegionInstaller, Run};
use crate::Error;
use crate::flash::{SequentialWriter, is_blank};
use crate::install::Event;
use crate::install::opener::Opener;
use crate::install::{check_container_len, check_region};

impl<const N: usize> RegionInstaller<'_, N> {
    /// Verifies `head` (signature, target, floor, encryption policy, chunk size, region, load
    /// address, size, and that `container_len` is the length its header implies) before
    /// anything is erased or written, then starts or resumes the container:
    ///
    /// - the one this installer is receiving (a dropped link): it goes on from where it is;
    /// - the one installed: nothing to receive, `resume_from` is its length and
    ///   [`Self::commit`] verifies it from flash again;
    /// - the one the log records as partly received (a reset): from the recorded chunk, the
    ///   image digest recomputed from the plaintext in flash, the rest of the region erased
    ///   again from there;
    /// - any other: recorded as the container being received (the region holds nothing valid
    ///   from then on) before anything is erased, from 0.
    pub fn begin(&mut self, head: &[u8], container_len: u32) -> Result<RegionBegun, Error> {
        let mut opener = Opener::<N>::new(self.policy);
        let (used, header) = match opener.push(head)? {
            (used, Some(Event::Header(h))) => (used, *h),
            _ => return Err(Error::Truncated),
        };
        if used != head.len() {
            return Err(Error::TrailingBytes);
        }
        check_region(&*self.region, &header)?;
        let layout = PayloadLayout::of(&header)?;
        let header_len = head
            .len()
            .saturating_sub(PREFIX_LEN.saturating_add(SIGNATURE_LEN));
        let expected = u32::try_from(layout.container_len(header_len)).unwrap_or(u32::MAX);
        check_container_len(container_len, expected)?;
        let new = Head::new(head)?;
        let id = new.id();
        let same = |h: &Head| h.as_bytes() == head;
        match self.run {
            Run::Storing {
                head: h,
                received,
                erase_start,
                erase_end,
                ..
            } if same(&h) => {
                return Ok(RegionBegun {
                    id,
                    resume_from: received,
                    erase_total: erase_end.saturating_sub(erase_start),
                });
            }
            Run::Done { head: h, .. } if same(&h) => {
                return Ok(RegionBegun {
                    id,
                    resume_from: container_len,
                    erase_total: 0,
                });
            }
            _ => {}
        }
        self.run = Run::Idle;
        if let Stored::Installed { head: h } = self.stored
            && same(&h)
        {
            self.run = Run::Done {
                head: new,
                len: container_len,
                verified: false,
            };
            return Ok(RegionBegun {
                id,
                resume_from: container_len,
                erase_total: 0,
            });
        }
        let resume = match self.stored {
            Stored::Receiving {
                head: h,
                chunk,
                link,
            } if same(&h) && chunk > 0 => Some((chunk, link)),
            _ => None,
        };
        let chunk = match resume {
            // Records are made on sector boundaries only; anything else starts over.
            Some((chunk, link))
                if self
                    .region
                    .sector(layout.plain_offset(chunk))
                    .is_some_and(|s| s.start == layout.plain_offset(chunk)) =>
            {
                let at = layout.plain_offset(chunk);
                let region = &mut *self.region;
                let resumed = opener.resume_at(chunk, link, |hash| {
                    let mut buf = [0u8; 256];
                    crate::flash::read_pieces(region, at, &mut buf, &mut |piece| {
                        hash(piece);
                        Ok(())
                    })
                });
                // An unreadable region starts over.
                if resumed.is_ok() { chunk } else { 0 }
            }
            _ => 0,
        };
        if chunk == 0 {
            opener = Opener::<N>::new(self.policy);
            opener.push(head)?;
            let (_, link) = opener.position().ok_or(Error::Truncated)?;
            // Before anything is erased: the region holds nothing valid from here on.
            self.record(Stored::Receiving {
                head: new,
                chunk: 0,
                link,
            })?;
        }
        let start = layout.plain_offset(chunk);
        let image_end = layout
            .image_len()
            .checked_next_multiple_of(self.region.write_size())
            .unwrap_or(u32::MAX);
        let erase_end = match image_end.checked_sub(1) {
            Some(last) if image_end > start => self.region.sector(last).map_or(start, |s| s.end),
            _ => start,
        };
        let resume_from = new.offset_of(chunk);
        self.opener = opener;
        self.writer = SequentialWriter::erased_to(start);
        self.run = Run::Storing {
            head: new,
            len: container_len,
            received: resume_from,
            erase_start: start,
            erase_next: start,
            erase_end,
        };
        Ok(RegionBegun {
            id,
            resume_from,
            erase_total: erase_end.saturating_sub(start),
        })
    }

    /// Erases the next sector the image will occupy (or finds it blank); returns the bytes
    /// done and the total, as [`RegionBegun::erase_total`] announced.
    pub fn erase_step(&mut self) -> Result<(u32, u32), Error> {
        let r = self.erase_next();
        if let Err(e) = r {
            self.fail(e);
        }
        r
    }

    fn erase_next(&mut self) -> Result<(u32, u32), Error> {
        let (start, next, end) = match self.run {
            Run::Storing {
                erase_start,
                erase_next,
                erase_end,
                ..
            } => (erase_start, erase_next, erase_end),
            Run::Done { .. } => return Ok((0, 0)),
            Run::Failed(e) => return Err(e),
            Run::Idle => return Err(Error::Truncated),
        };
        let mut done = next;
        if next < end {
            let sector_end = self.region.sector(next).map_or(end, |s| s.end);
            if !is_blank(&mut *self.region, next, sector_end) {
                self.region.erase_sector_at(next)?;
            }
            done = sector_end;
            self.writer = SequentialWriter::erased_to(done);
            if let Run::Storing { erase_next, .. } = &mut self.run {
                *erase_next = done;
            }
        }
        Ok((done.saturating_sub(start), end.saturating_sub(start)))
    }
}
