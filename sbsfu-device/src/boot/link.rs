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
use crate::install::RegionInstaller;

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

/// What a [`StagerTarget`] tells a sender about itself besides what the stager knows.
#[derive(Debug, Clone, Copy)]
pub struct DeviceInfo {
    /// The longest it stays silent while busy: one sector erase, or a commit that verifies the
    /// whole container (milliseconds, at most [`sbsfu_link::MAX_BUSY_MS`]).
    pub busy_ms: u32,
    /// Whether the caller resets the device on the link's `Reset` request.
    pub accepts_reset: bool,
}

/// A [`Stager`] as the link's [`Target`]: the container slot of the active region (`app`),
/// installed by the boot manager at the next reset. Keep one for the life of the application
/// (a dropped link resumes from what it has in RAM; a reset from what the boot state records).
pub struct StagerTarget<'s, const N: usize> {
    stager: Stager<'s, N>,
    info: DeviceInfo,
    target: &'s str,
}

impl<'s, const N: usize> StagerTarget<'s, N> {
    /// The stager behind the link; `target` is the device class (the boot config's).
    pub fn new(stager: Stager<'s, N>, target: &'s str, info: DeviceInfo) -> Self {
        Self {
            stager,
            info,
            target,
        }
    }

    /// The stager.
    pub fn stager(&mut self) -> &mut Stager<'s, N> {
        &mut self.stager
    }
}

fn installed(head: &[u8]) -> Option<Installed> {
    let header: Header = SignedHeader::parse(head).ok()?.0.header;
    Some(Installed {
        version: header.version,
        security_counter: header.security_counter,
    })
}

impl<const N: usize> Target for StagerTarget<'_, N> {
    fn describe(&mut self) -> Result<Description, Refusal> {
        let bad = |_| refusal(Error::InvalidLayout);
        let state = self.stager.state();
        let floor = state.floor;
        let running = state.active().and_then(installed);
        let region = RegionInfo {
            name: Name::new(ACTIVE_REGION).map_err(bad)?,
            capacity: self.stager.capacity(),
            floor,
            installed: running,
            pending: self.stager.pending().map(ContainerId),
            partial: self.stager.partial().map(|(id, durable)| Partial {
                id: ContainerId(id),
                durable,
            }),
        };
        let mut regions = Regions::new();
        regions
            .push(region)
            .map_err(|_| refusal(Error::InvalidLayout))?;
        Ok(Description {
            target: Name::new(self.target).map_err(bad)?,
            chunk_size: u32::try_from(N).unwrap_or(u32::MAX),
            busy_ms: self.info.busy_ms,
            regions,
        })
    }

    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal> {
        let b = self.stager.begin(head, container_len).map_err(refusal)?;
        Ok(Begun {
            id: ContainerId(b.id),
            resume_from: b.resume_from,
            erase_total: b.erase_total,
        })
    }

    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        let (done, total) = self.stager.erase_step().map_err(refusal)?;
        Ok(EraseProgress { done, total })
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        self.stager.write(offset, bytes).map_err(refusal)
    }

    fn durable(&self) -> u32 {
        self.stager.durable()
    }

    fn commit(&mut self) -> Result<Outcome, Refusal> {
        self.stager.commit().map_err(refusal)?;
        Ok(Outcome::Pending)
    }

    fn accepts_reset(&self) -> bool {
        self.info.accepts_reset
    }
}

/// A data region's [`RegionInstaller`] as the link's [`Target`]: a container naming the region
/// is installed into it at once (outcome `installed`), resuming after a dropped link or a
/// reset. Keep one for the life of the application.
pub struct InstallerTarget<'a, const N: usize> {
    installer: RegionInstaller<'a, N>,
    info: DeviceInfo,
    target: &'a str,
}

impl<'a, const N: usize> InstallerTarget<'a, N> {
    /// The installer behind the link; `target` is the device class (the policy's).
    pub fn new(installer: RegionInstaller<'a, N>, target: &'a str, info: DeviceInfo) -> Self {
        Self {
            installer,
            info,
            target,
        }
    }

    /// The installer.
    pub fn installer(&mut self) -> &mut RegionInstaller<'a, N> {
        &mut self.installer
    }
}

impl<const N: usize> Target for InstallerTarget<'_, N> {
    fn describe(&mut self) -> Result<Description, Refusal> {
        let bad = |_| refusal(Error::InvalidLayout);
        let i = &self.installer;
        let region = RegionInfo {
            name: Name::new(i.region_name()).map_err(bad)?,
            capacity: i.capacity(),
            floor: i.floor(),
            installed: i.installed().map(|(version, security_counter)| Installed {
                version,
                security_counter,
            }),
            pending: None,
            partial: i.partial().map(|(id, durable)| Partial {
                id: ContainerId(id),
                durable,
            }),
        };
        let mut regions = Regions::new();
        regions
            .push(region)
            .map_err(|_| refusal(Error::InvalidLayout))?;
        Ok(Description {
            target: Name::new(self.target).map_err(bad)?,
            chunk_size: u32::try_from(N).unwrap_or(u32::MAX),
            busy_ms: self.info.busy_ms,
            regions,
        })
    }

    fn begin(&mut self, head: &[u8], container_len: u32) -> Result<Begun, Refusal> {
        let b = self.installer.begin(head, container_len).map_err(refusal)?;
        Ok(Begun {
            id: ContainerId(b.id),
            resume_from: b.resume_from,
            erase_total: b.erase_total,
        })
    }

    fn erase_step(&mut self) -> Result<EraseProgress, Refusal> {
        let (done, total) = self.installer.erase_step().map_err(refusal)?;
        Ok(EraseProgress { done, total })
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Refusal> {
        self.installer.write(offset, bytes).map_err(refusal)
    }

    fn durable(&self) -> u32 {
        self.installer.durable()
    }

    fn commit(&mut self) -> Result<Outcome, Refusal> {
        self.installer.commit().map_err(refusal)?;
        Ok(Outcome::Installed)
    }

    fn accepts_reset(&self) -> bool {
        self.info.accepts_reset
    }
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
