//! `sbsfu push`: a container into a device over a serial port or TCP, with `sbsfu-link`'s
//! sender (windowed, retransmitting, resuming what an earlier push left), and `push --info`,
//! the device's `Hello`.

use std::io::{self, IsTerminal, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sbsfu_link::{Config, Hello, Outcome, Phase, Report as LinkReport, Sender, Source};
use serde::Serialize;

use crate::cli::{LinkArgs, PushArgs};
use crate::error::{Error, Result};
use crate::keys::random_bytes;
use crate::report::{Report, line, render};

/// The longest frame `push` sends (the device's `Hello` may lower it).
const FRAME: usize = 1024;
/// How long `push --tcp` keeps trying to connect (a simulated device still starting).
const CONNECT_FOR: Duration = Duration::from_secs(3);
/// The longest a read waits, so that timers and the progress bar keep running.
const POLL: Duration = Duration::from_millis(20);
/// Why a push stopped when the other end went away.
const CLOSED: &str = "the device closed the connection";

/// A byte stream to the device whose reads wait at most a given time.
trait Wire: Read + Write {
    fn set_wait(&mut self, wait: Duration) -> io::Result<()>;
}

impl Wire for TcpStream {
    fn set_wait(&mut self, wait: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(wait))
    }
}

impl Wire for Box<dyn serialport::SerialPort> {
    fn set_wait(&mut self, wait: Duration) -> io::Result<()> {
        self.set_timeout(wait).map_err(io::Error::from)
    }
}

/// Where the device is, opened.
struct Link {
    wire: Box<dyn Wire>,
    /// `tcp 127.0.0.1:5555`, `/dev/ttyUSB0`: for messages.
    name: String,
    config: Config,
}

impl Link {
    fn open(args: &LinkArgs, baud: u32) -> Result<Self> {
        let session = u16::from_le_bytes(random_bytes::<2>().map_err(|e| link_err("", &e))?);
        let config = Config {
            session: session.max(1),
            ..Config::for_baud(baud)
        };
        if let Some(addr) = &args.tcp {
            let started = Instant::now();
            let stream = loop {
                match TcpStream::connect(addr) {
                    Ok(s) => break s,
                    Err(e)
                        if e.kind() == io::ErrorKind::ConnectionRefused
                            && started.elapsed() < CONNECT_FOR =>
                    {
                        thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => return Err(link_err(&format!("tcp {addr}: "), &e)),
                }
            };
            stream
                .set_nodelay(true)
                .map_err(|e| link_err(&format!("tcp {addr}: "), &e))?;
            return Ok(Self {
                wire: Box::new(stream),
                name: format!("tcp {addr}"),
                config,
            });
        }
        let path = args.port.as_deref().unwrap_or_default();
        let port = serialport::new(path, baud)
            .timeout(POLL)
            .open()
            .map_err(|e| Error::Link(format!("{path}: {e}")))?;
        Ok(Self {
            wire: Box::new(port),
            name: path.to_owned(),
            config,
        })
    }

    /// Runs `sender` to its end over the wire, drawing `bar`.
    fn drive<S: Source>(&mut self, sender: &mut Sender<S, FRAME>, bar: &Bar) -> Result<()> {
        let started = Instant::now();
        let now = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut buf = [0u8; 4096];
        while !sender.is_finished() {
            while let Some(frame) = sender.transmit(now()) {
                self.wire
                    .write_all(frame)
                    .and_then(|()| self.wire.flush())
                    .map_err(|e| self.broken(sender, &e))?;
            }
            let wait = sender
                .deadline()
                .map_or(POLL, |d| Duration::from_millis(d.saturating_sub(now())))
                .clamp(Duration::from_millis(1), POLL);
            self.wire
                .set_wait(wait)
                .map_err(|e| self.broken(sender, &e))?;
            match self.wire.read(&mut buf) {
                Ok(0) => return Err(self.lost(sender, CLOSED)),
                Ok(n) => sender.receive(&buf[..n], now()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.broken(sender, &e)),
            }
            bar.show(sender);
        }
        Ok(())
    }

    /// The link broke under `sender` (`e`): say how far the push got.
    fn broken<S: Source>(&self, sender: &Sender<S, FRAME>, e: &io::Error) -> Error {
        let closed = matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        );
        if closed {
            self.lost(sender, CLOSED)
        } else {
            self.lost(sender, &e.to_string())
        }
    }

    /// The link broke under `sender`: say how far the push got.
    fn lost<S: Source>(&self, sender: &Sender<S, FRAME>, why: &str) -> Error {
        let p = sender.progress();
        Error::Link(format!(
            "{}: {why} while {}, after {} of {} bytes were acknowledged; push again to resume",
            self.name,
            p.phase.as_str(),
            p.acked,
            p.total
        ))
    }
}

fn link_err(prefix: &str, e: &io::Error) -> Error {
    Error::Link(format!("{prefix}{e}"))
}

/// The progress bar: on a terminal, and not for `--json`.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new(visible: bool) -> Self {
        let visible = visible && io::stderr().is_terminal();
        Self(visible.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg:>9} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        }))
    }

    fn show<S: Source>(&self, sender: &Sender<S, FRAME>) {
        let Some(bar) = &self.0 else { return };
        let p = sender.progress();
        match p.phase {
            Phase::Erasing => {
                bar.set_message("erasing");
                bar.set_length(u64::from(p.erase.total));
                bar.set_position(u64::from(p.erase.done));
            }
            _ => {
                bar.set_message(p.phase.as_str().to_owned());
                bar.set_length(u64::from(p.total));
                bar.set_position(u64::from(p.acked));
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// What a push did (`--json`: these fields).
#[derive(Serialize)]
pub struct PushReport {
    /// `pending` (installed at the next reset) or `installed`.
    result: &'static str,
    /// The container's id, as the device computed it.
    id: String,
    container_len: u32,
    resumed_from: u32,
    bytes_sent: u64,
    wire_bytes: u64,
    retransmits: u32,
    restarts: u8,
    reset: bool,
    seconds: f64,
    #[serde(skip)]
    to: String,
}

impl PushReport {
    fn new(r: &LinkReport, to: String, seconds: f64) -> Self {
        Self {
            result: r.outcome.map_or("pending", Outcome::as_str),
            id: r.id.to_string(),
            container_len: r.container_len,
            resumed_from: r.resumed_from,
            bytes_sent: r.bytes_sent,
            wire_bytes: r.wire_bytes,
            retransmits: r.retransmits,
            restarts: r.restarts,
            reset: r.reset,
            seconds: (seconds * 1000.0).round() / 1000.0,
            to,
        }
    }
}

impl Report for PushReport {
    fn text(&self) -> String {
        let mut out = format!("pushed to {}\n", self.to);
        let result = match (self.result, self.reset) {
            ("pending", true) => "pending; the device is resetting to install it",
            ("pending", false) => "pending: installed at the next reset",
            (r, _) => r,
        };
        line(&mut out, "result", result);
        line(&mut out, "id", &self.id);
        line(&mut out, "container_len", self.container_len);
        line(&mut out, "resumed_from", self.resumed_from);
        line(&mut out, "bytes_sent", self.bytes_sent);
        line(&mut out, "retransmits", self.retransmits);
        line(&mut out, "seconds", format!("{:.2}", self.seconds));
        out
    }
}

/// `push --info`: the device's `Hello`.
#[derive(Serialize)]
pub struct InfoReport {
    target: String,
    max_frame: u16,
    window: u8,
    accepts_reset: bool,
    chunk_size: u32,
    busy_ms: u32,
    regions: Vec<RegionReport>,
}

#[derive(Serialize)]
struct RegionReport {
    name: String,
    capacity: u32,
    floor: u32,
    version: Option<String>,
    security_counter: Option<u32>,
    pending: Option<String>,
    partial: Option<String>,
    partial_durable: Option<u32>,
}

impl InfoReport {
    fn new(h: &Hello) -> Self {
        Self {
            target: h.device.target.to_string(),
            max_frame: h.max_frame,
            window: h.window,
            accepts_reset: h.accepts_reset,
            chunk_size: h.device.chunk_size,
            busy_ms: h.device.busy_ms,
            regions: h
                .device
                .regions
                .iter()
                .map(|r| RegionReport {
                    name: r.name.to_string(),
                    capacity: r.capacity,
                    floor: r.floor,
                    version: r.installed.map(|i| i.version.to_string()),
                    security_counter: r.installed.map(|i| i.security_counter),
                    pending: r.pending.map(|p| p.to_string()),
                    partial: r.partial.map(|p| p.id.to_string()),
                    partial_durable: r.partial.map(|p| p.durable),
                })
                .collect(),
        }
    }
}

impl Report for InfoReport {
    fn text(&self) -> String {
        let mut out = format!("device {}\n", self.target);
        line(
            &mut out,
            "link",
            format!(
                "frames of {} bytes, window {}, reset {}",
                self.max_frame,
                self.window,
                if self.accepts_reset { "yes" } else { "no" }
            ),
        );
        line(&mut out, "chunk_size", self.chunk_size);
        line(&mut out, "busy_ms", self.busy_ms);
        for r in &self.regions {
            out.push_str(&format!("region {}\n", r.name));
            line(&mut out, "capacity", r.capacity);
            line(&mut out, "floor", r.floor);
            match (&r.version, r.security_counter) {
                (Some(v), Some(c)) => line(&mut out, "runs", format!("{v} (security counter {c})")),
                _ => line(&mut out, "runs", "nothing"),
            }
            line(&mut out, "pending", r.pending.as_deref().unwrap_or("none"));
            match (&r.partial, r.partial_durable) {
                (Some(id), Some(d)) => line(&mut out, "partial", format!("{id}, {d} bytes")),
                _ => line(&mut out, "partial", "none"),
            }
        }
        out
    }
}

/// `sbsfu push`.
pub fn push(args: &PushArgs) -> Result<Vec<u8>> {
    let json = args.output.json;
    let Some(path) = &args.container else {
        let mut link = Link::open(&args.link, args.baud)?;
        let mut sender = Sender::<&[u8], FRAME>::info(link.config);
        link.drive(&mut sender, &Bar(None))?;
        return match (sender.result(), sender.hello()) {
            (Some(Ok(_)), Some(hello)) => Ok(render(&InfoReport::new(hello), json)),
            (Some(Err(e)), _) => Err(Error::Link(format!("{}: {e}", link.name))),
            _ => Err(Error::Link(format!("{}: no Hello", link.name))),
        };
    };
    let container = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Checked before the device is opened: not a container is an input error.
    Sender::<&[u8], FRAME>::new(&container[..], Config::for_baud(args.baud))
        .map_err(|e| input(path, &e))?;
    let mut link = Link::open(&args.link, args.baud)?;
    let config = Config {
        reset: args.reset,
        ..link.config
    };
    let mut sender =
        Sender::<&[u8], FRAME>::new(&container[..], config).map_err(|e| input(path, &e))?;
    let bar = Bar::new(!json);
    let started = Instant::now();
    let driven = link.drive(&mut sender, &bar);
    bar.finish();
    driven?;
    match sender.result() {
        Some(Ok(report)) => Ok(render(
            &PushReport::new(&report, link.name, started.elapsed().as_secs_f64()),
            json,
        )),
        Some(Err(e)) => Err(failure(path, &link.name, &e)),
        None => Err(link.lost(&sender, "the push did not finish")),
    }
}

fn input(path: &Path, e: &sbsfu_link::Error) -> Error {
    let reason = match e {
        sbsfu_link::Error::NotAContainer(e) => e.to_string(),
        other => other.to_string(),
    };
    Error::Input {
        path: path.to_owned(),
        reason,
    }
}

/// A push that ended in an error, as one line: the device's reason (exit 3), or how far the
/// link got (exit 1).
fn failure(path: &Path, to: &str, e: &sbsfu_link::Error) -> Error {
    use sbsfu_link::Error as L;
    let path = path.display();
    match e {
        L::Refused(r) => Error::Refused(format!(
            "{path}: refused by the device: {} (code 0x{:04x})",
            r.text, r.code.0
        )),
        L::Timeout {
            phase: Phase::Committing,
            acked,
        } => Error::Link(format!(
            "{to}: the device stopped answering while it verified the container ({acked} bytes \
             acknowledged); it may have committed: `sbsfu push --info` shows its pending container"
        )),
        L::Timeout { phase, acked } => Error::Link(format!(
            "{to}: the device stopped answering while {}, after {acked} bytes were acknowledged; \
             push again to resume",
            phase.as_str()
        )),
        other => Error::Link(format!("{to}: {other}")),
    }
}
