//! The device's `Hello`: what it is, what it accepts, and what each region holds.

use sbsfu_format::Name;
use sbsfu_format::Reader;
use sbsfu_format::Version;
use sbsfu_format::{MAX_REGION_LEN, MAX_TARGET_LEN};

use crate::ContainerId;
use crate::frame::Put;
use crate::message::{put_u8, put_u16, put_u32, take_u8, take_u16, take_u32};
use crate::{Error, MAX_BUSY_MS, MAX_FRAME_LEN, MAX_REGIONS, MAX_WINDOW, MIN_FRAME_LEN};

/// `Hello` flag: the device accepts `Reset`.
const ACCEPTS_RESET: u8 = 0x01;
/// Region flags: which optional parts follow.
const HAS_INSTALLED: u8 = 0x01;
const HAS_PENDING: u8 = 0x02;
const HAS_PARTIAL: u8 = 0x04;

/// The image a region runs (or holds, for a data region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// Display version.
    pub version: Version,
    /// Anti-rollback counter of the installed image.
    pub security_counter: u32,
}

/// A container partly received into a region: resumable by sending it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// Which container.
    pub id: ContainerId,
    /// How many of its bytes survive a reset.
    pub durable: u32,
}

/// One region of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// The region's name, as containers name it (`app`, `data`).
    pub name: Name<MAX_REGION_LEN>,
    /// The largest container (for staged regions) or image it takes, in bytes.
    pub capacity: u32,
    /// The anti-rollback floor: the lowest security counter it accepts.
    pub floor: u32,
    /// What it runs or holds, if anything.
    pub installed: Option<Installed>,
    /// The container that will be installed at the next reset, if any.
    pub pending: Option<ContainerId>,
    /// A container partly received, if any.
    pub partial: Option<Partial>,
}

/// Up to [`MAX_REGIONS`] regions, without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regions {
    items: [Option<RegionInfo>; MAX_REGIONS],
}

impl Regions {
    /// No regions.
    pub const fn new() -> Self {
        Self {
            items: [None; MAX_REGIONS],
        }
    }

    /// Adds a region; fails with [`Error::InvalidField`] past [`MAX_REGIONS`].
    pub fn push(&mut self, region: RegionInfo) -> Result<(), Error> {
        let slot = self
            .items
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(Error::InvalidField)?;
        *slot = Some(region);
        Ok(())
    }

    /// The regions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &RegionInfo> {
        self.items.iter().flatten()
    }

    /// How many regions.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region named `name`.
    pub fn get(&self, name: &str) -> Option<&RegionInfo> {
        self.iter().find(|r| r.name.as_str() == name)
    }
}

/// What a [`crate::Target`] says about the device; the receiver adds its frame and window to
/// make the `Hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Description {
    /// The device class containers must name (`stm32f405`).
    pub target: Name<MAX_TARGET_LEN>,
    /// The installer's chunk buffer: the largest `chunk_size` a container may use.
    pub chunk_size: u32,
    /// The longest the device stays silent while busy: one erase step, or a commit (which may
    /// verify the whole container). At most [`MAX_BUSY_MS`].
    pub busy_ms: u32,
    /// Its regions.
    pub regions: Regions,
}

/// The device's `Hello` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The longest frame the device accepts, on the wire, delimiter included.
    pub max_frame: u16,
    /// How many `Data` frames it accepts in flight (its receive buffering).
    pub window: u8,
    /// Whether the device accepts `Reset` (to install a pending container now).
    pub accepts_reset: bool,
    /// The rest.
    pub device: Description,
}

fn put_name<const N: usize>(w: &mut impl Put, name: &Name<N>) {
    let s = name.as_str().as_bytes();
    put_u8(w, u8::try_from(s.len()).unwrap_or(0));
    w.put(s);
}

fn take_name<const N: usize>(r: &mut Reader<'_>) -> Result<Name<N>, Error> {
    let len = usize::from(take_u8(r)?);
    if len > N {
        return Err(Error::InvalidName);
    }
    let raw = r.take(len)?;
    let s = core::str::from_utf8(raw).map_err(|_| Error::InvalidName)?;
    Ok(Name::new(s)?)
}

fn take_id(r: &mut Reader<'_>) -> Result<ContainerId, Error> {
    Ok(ContainerId(r.take_array()?))
}

impl Hello {
    pub(crate) fn encode(&self, w: &mut impl Put) {
        let d = &self.device;
        put_name(w, &d.target);
        put_u16(w, self.max_frame);
        put_u8(w, self.window);
        put_u8(w, if self.accepts_reset { ACCEPTS_RESET } else { 0 });
        put_u32(w, d.chunk_size);
        put_u32(w, d.busy_ms);
        put_u8(w, u8::try_from(d.regions.len()).unwrap_or(0));
        for region in d.regions.iter() {
            put_name(w, &region.name);
            put_u32(w, region.capacity);
            put_u32(w, region.floor);
            let flags = [
                (region.installed.is_some(), HAS_INSTALLED),
                (region.pending.is_some(), HAS_PENDING),
                (region.partial.is_some(), HAS_PARTIAL),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .fold(0, |acc, (_, bit)| acc | bit);
            put_u8(w, flags);
            if let Some(i) = &region.installed {
                put_u32(w, i.version.major);
                put_u32(w, i.version.minor);
                put_u32(w, i.version.patch);
                put_u32(w, i.security_counter);
            }
            if let Some(id) = &region.pending {
                w.put(&id.0);
            }
            if let Some(p) = &region.partial {
                w.put(&p.id.0);
                put_u32(w, p.durable);
            }
        }
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let target = take_name(r)?;
        let max_frame = take_u16(r)?;
        if usize::from(max_frame) < MIN_FRAME_LEN || usize::from(max_frame) > MAX_FRAME_LEN {
            return Err(Error::InvalidField);
        }
        let window = take_u8(r)?;
        if window == 0 || window > MAX_WINDOW {
            return Err(Error::InvalidField);
        }
        let flags = take_u8(r)?;
        if flags & !ACCEPTS_RESET != 0 {
            return Err(Error::InvalidField);
        }
        let chunk_size = take_u32(r)?;
        let busy_ms = take_u32(r)?;
        if busy_ms > MAX_BUSY_MS {
            return Err(Error::InvalidField);
        }
        let count = usize::from(take_u8(r)?);
        if count > MAX_REGIONS {
            return Err(Error::InvalidField);
        }
        let mut regions = Regions::new();
        for _ in 0..count {
            regions.push(Self::parse_region(r)?)?;
        }
        Ok(Self {
            max_frame,
            window,
            accepts_reset: flags & ACCEPTS_RESET != 0,
            device: Description {
                target,
                chunk_size,
                busy_ms,
                regions,
            },
        })
    }

    fn parse_region(r: &mut Reader<'_>) -> Result<RegionInfo, Error> {
        let name = take_name(r)?;
        let capacity = take_u32(r)?;
        let floor = take_u32(r)?;
        let flags = take_u8(r)?;
        if flags & !(HAS_INSTALLED | HAS_PENDING | HAS_PARTIAL) != 0 {
            return Err(Error::InvalidField);
        }
        let installed = if flags & HAS_INSTALLED != 0 {
            Some(Installed {
                version: Version {
                    major: take_u32(r)?,
                    minor: take_u32(r)?,
                    patch: take_u32(r)?,
                },
                security_counter: take_u32(r)?,
            })
        } else {
            None
        };
        let pending = if flags & HAS_PENDING != 0 {
            Some(take_id(r)?)
        } else {
            None
        };
        let partial = if flags & HAS_PARTIAL != 0 {
            let id = take_id(r)?;
            let durable = take_u32(r)?;
            if durable > capacity {
                return Err(Error::InvalidField);
            }
            Some(Partial { id, durable })
        } else {
            None
        };
        Ok(RegionInfo {
            name,
            capacity,
            floor,
            installed,
            pending,
            partial,
        })
    }
}
