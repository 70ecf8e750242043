//! The device side of `sbsfu-link` (feature `link`): the [`Stager`] behind the link's
//! [`Target`] trait, so that a [`sbsfu_link::Receiver`] on any byte stream (a UART, USB, a TCP
//! socket in `sbsfu device-sim`) stages containers with resume; the resumable installer of a
//! data region behind it too ([`InstallerTarget`]: installed at once); [`Routed`] to serve
//! both from one receiver; and the one table from this crate's [`Error`] to the link's error
//! codes ([`refusal`]).

use sbsfu_format::Name;
use sbsfu_format::{Header, SignedHeader};
use sbsfu_link::target::{Begun, EraseProgress, Target};
use sbsfu_link::{ContainerId, Description, ErrorCode, Installed, Outcome, Partial};
use sbsfu_link::{Refusal, RegionInfo, Regions};

use super::layout::ACTIVE_REGION;
use super::update::Stager;
use crate::Error;
use crate::install::{RegionBegun, RegionInstaller};

/// The link's code for each of this crate's errors, with the error's own one-line text: the one
/// place they are mapped (docs/LINK.md, "Error codes").
pub fn refusal(e: Error) -> Refusal {
    let code = match e {
        Error::Format(_) | Error::InvalidVectorTable => ErrorCode::FORMAT,
        Error::UnknownSigner(_) | Error::InvalidKey => ErrorCode::UNKNOWN_SIGNER,
        Error::Authentication => ErrorCode::AUTHENTICATION,
        Error::WrongTarget => ErrorCode::WRONG_TARGET,
        Error::Rollback { .. } | Error::StaleKeySet { .. } => ErrorCode::ROLLBACK,
        Error::EncryptionRequired => ErrorCode::ENCRYPTION_REQUIRED,
        Error::UnknownDeviceKey(_) | Error::NotARecipient => ErrorCode::UNKNOWN_DEVICE_KEY,
        Error::ChunkTooLarge { .. } | Error::ChunkMisaligned { .. } => ErrorCode::CHUNK_SIZE,
        Error::UnknownRegion | Error::WrongLoadAddress { .. } => ErrorCode::REGION,
        Error::RegionTooSmall { .. } => ErrorCode::TOO_LARGE,
        Error::Truncated | Error::TrailingBytes => ErrorCode::LENGTH,
        Error::Flash(_) | Error::Source | Error::CounterExhausted => ErrorCode::FLASH,
        Error::Busy => ErrorCode::BUSY,
        Error::CorruptState | Error::InvalidLayout | Error::InvalidRegion | Error::NoImage => {
            ErrorCode::STATE
        }
    };
    Refusal::new(code, e.as_str())
}

/// What a [`LinkTarget`] tells a sender about the device besides what its transfer knows.
#[derive(Debug, Clone, Copy)]
pub struct DeviceInfo {
    /// The longest it stays silent while busy: one sector erase, or a commit that verifies the
    /// whole container (milliseconds, at most [`sbsfu_link::MAX_BUSY_MS`]).
    pub busy_ms: u32,
    /// Whether the caller resets the device on the link's `Reset` request.
    pub accepts_reset: bool,
}

/// A resumable transfer into one region, as a [`LinkTarget`] drives it: the [`Stager`] (the
/// container slot of the active region, installed at the next reset) and a data region's
/// [`RegionInstaller`] (installed at once). Each method is the transfer's own, of the same name.
pub trait Transfer {
    /// What a commit achieves.
    const OUTCOME: Outcome;
    /// The largest chunk the transfer takes.
    const CHUNK_SIZE: usize;
    /// The region it fills, as a `Hello` describes it.
    fn region(&mut self) -> Result<RegionInfo, Error>;
    /// Verifies the head and starts or resumes the container (see [`Stager::begin`]).
    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<RegionBegun, Error>;
    /// Erases the next sector ahead of the data: bytes done and the total.
    fn erase_step(&mut self) -> Result<(u32, u32), Error>;
    /// Stores `bytes` at `offset`, where the bytes received so far end.
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error>;
    /// Bytes of the container begun last that survive a reset.
    fn durable(&self) -> u32;
    /// Ends the container (verified as the transfer verifies it).
    fn commit(&mut self) -> Result<(), Error>;
}

/// A [`Transfer`] as the link's [`Target`], describing the device as `target` (the device
/// class). Keep one for the life of the application (a dropped link resumes from what the
/// transfer holds in RAM; a reset from what it recorded).
pub struct LinkTarget<'a, T> {
    transfer: T,
    info: DeviceInfo,
    target: &'a str,
}

/// The [`Stager`] as the link's [`Target`]: the container slot of the active region (`app`),
/// installed by the boot manager at the next reset.
pub type StagerTarget<'s, const N: usize> = LinkTarget<'s, Stager<'s, N>>;

/// A data region's [`RegionInstaller`] as the link's [`Target`]: a container naming the region
/// is installed into it at once (outcome `installed`), resuming after a dropped link or a
/// reset.
pub type InstallerTarget<'a, const N: usize> = LinkTarget<'a, RegionInstaller<'a, N>>;

impl<'a, T: Transfer> LinkTarget<'a, T> {
    /// The transfer behind the link; `target` is the device class (the boot config's or the
    /// policy's).
    pub fn new(transfer: T, target: &'a str, info: DeviceInfo) -> Self {
        Self {
            transfer,
            info,
            target,
        }
    }
}

impl<'s, const N: usize> StagerTarget<'s, N> {
    /// The stager.
    pub fn stager(&mut self) -> &mut Stager<'s, N> {
        &mut self.transfer
    }
}

impl<'a, const N: usize> InstallerTarget<'a, N> {
    /// The installer.
    pub fn installer(&mut self) -> &mut RegionInstaller<'a, N> {
        &mut self.transfer
    }
}

impl<T: Transfer> Target for LinkTarget<'_, T> {
    fn describe(&mut self) -> Result<Description, Refusal> {
        let mut regions = Regions::new();
        regions
            .push(self.transfer.region().map_err(refusal)?)
            .map_err(|_| refusal(Error::InvalidLayout))?;
        Ok(Description {
            target: name(self.target).map_err(refusal)?,
            chunk_size: u32::try_from(T::CHUNK_SIZE).unwrap_or(u32::MAX),
            busy_ms: self.info.busy_ms,
            regions,
        })
    }

    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal> {
        let b = self.transfer.begin(head, container_len).map_err(refusal)?;
        Ok(Begun {
            id: ContainerId(b.id),
            resume_from: b.resume_from,
            erase_total: b.erase_total,
        })
    }

    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        let (done, total) = self.transfer.erase_step().map_err(refusal)?;
        Ok(EraseProgress { done, total })
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        self.transfer.write(offset, bytes).map_err(refusal)
    }

    fn durable(&self) -> u32 {
        self.transfer.durable()
    }

    fn commit(&mut self) -> Result<Outcome, Refusal> {
        self.transfer.commit().map_err(refusal)?;
        Ok(T::OUTCOME)
    }

    fn accepts_reset(&self) -> bool {
        self.info.accepts_reset
    }
}

/// A name as the link carries it.
fn name<const L: usize>(s: &str) -> Result<Name<L>, Error> {
    Name::new(s).map_err(|_| Error::InvalidLayout)
}

fn partial((id, durable): ([u8; 32], u32)) -> Partial {
    Partial {
        id: ContainerId(id),
        durable,
    }
}

/// The version and security counter of a signed head, parsed but not verified (it names, it
/// proves nothing).
fn installed(head: &[u8]) -> Option<Installed> {
    let header: Header = SignedHeader::parse(head).ok()?.0.header;
    Some(Installed {
        version: header.version,
        security_counter: header.security_counter,
    })
}

/// The steps of a resumable transfer, which the [`Stager`] and the [`RegionInstaller`] both
/// have as inherent methods of the same signatures: a [`Transfer`] calls them as they are.
macro_rules! resumable_steps {
    ($t:ident) => {
        fn begin(&mut self, head: &[u8], container_len: u32) -> Result<RegionBegun, Error> {
            $t::begin(self, head, container_len)
        }

        fn erase_step(&mut self) -> Result<(u32, u32), Error> {
            $t::erase_step(self)
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
            $t::write(self, offset, bytes)
        }

        fn durable(&self) -> u32 {
            $t::durable(self)
        }

        fn commit(&mut self) -> Result<(), Error> {
            $t::commit(self).map(drop)
        }
    };
}

impl<const N: usize> Transfer for Stager<'_, N> {
    const OUTCOME: Outcome = Outcome::Pending;
    const CHUNK_SIZE: usize = N;

    fn region(&mut self) -> Result<RegionInfo, Error> {
        let state = self.state();
        let (floor, installed) = (state.floor, state.active().and_then(installed));
        Ok(RegionInfo {
            name: name(ACTIVE_REGION)?,
            capacity: self.capacity(),
            floor,
            installed,
            pending: self.pending().map(ContainerId),
            partial: self.partial().map(partial),
        })
    }

    resumable_steps!(Stager);
}

impl<const N: usize> Transfer for RegionInstaller<'_, N> {
    const OUTCOME: Outcome = Outcome::Installed;
    const CHUNK_SIZE: usize = N;

    fn region(&mut self) -> Result<RegionInfo, Error> {
        Ok(RegionInfo {
            name: name(self.region_name())?,
            capacity: self.capacity(),
            floor: self.floor(),
            installed: self
                .installed()
                .map(|(version, security_counter)| Installed {
                    version,
                    security_counter,
                }),
            pending: None,
            partial: self.partial().map(partial),
        })
    }

    resumable_steps!(RegionInstaller);
}

/// Two targets behind one receiver: a container whose header names `region` goes to
/// `second` (a data region's [`InstallerTarget`]), any other to `first` (the [`StagerTarget`],
/// which refuses what is not for it). The header is only read to route the container; the
/// target it goes to verifies it. The `Hello` lists the regions of both.
pub struct Routed<'r, A, B> {
    first: A,
    second: B,
    region: &'r str,
    to_second: bool,
}

impl<'r, A: Target, B: Target> Routed<'r, A, B> {
    /// `first` takes every container but those naming `region`, which go to `second`.
    pub fn new(first: A, second: B, region: &'r str) -> Self {
        Self {
            first,
            second,
            region,
            to_second: false,
        }
    }

    /// The two targets.
    pub fn parts(&mut self) -> (&mut A, &mut B) {
        (&mut self.first, &mut self.second)
    }

    fn current(&mut self) -> &mut dyn Target {
        if self.to_second {
            &mut self.second
        } else {
            &mut self.first
        }
    }
}

impl<A: Target, B: Target> Target for Routed<'_, A, B> {
    fn describe(&mut self) -> Result<Description, Refusal> {
        let mut d = self.first.describe()?;
        let other = self.second.describe()?;
        for r in other.regions.iter() {
            d.regions
                .push(*r)
                .map_err(|_| refusal(Error::InvalidLayout))?;
        }
        d.chunk_size = d.chunk_size.min(other.chunk_size);
        d.busy_ms = d.busy_ms.max(other.busy_ms);
        Ok(d)
    }

    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal> {
        self.to_second =
            SignedHeader::parse(head).is_ok_and(|(s, _)| s.header.region.as_str() == self.region);
        self.current().begin(head, container_len)
    }

    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        self.current().erase_step()
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        self.current().write(offset, bytes)
    }

    fn durable(&self) -> u32 {
        if self.to_second {
            self.second.durable()
        } else {
            self.first.durable()
        }
    }

    fn commit(&mut self) -> Result<Outcome, Refusal> {
        self.current().commit()
    }

    fn accepts_reset(&self) -> bool {
        self.first.accepts_reset()
    }
}
