//! Running firmware on QEMU's STM32F405 (`netduinoplus2`), always under `timeout`: a panic with a
//! closed output pipe makes QEMU spin forever.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::{Result, root};

/// How to run.
pub struct Run<'a> {
    /// The firmware ELF.
    pub elf: &'a Path,
    /// Extra flash (or RAM) content: (file, address) pairs, for QEMU's loader device.
    pub load: &'a [(&'a Path, u32)],
    /// `-icount shift=0` (TIM2 counts instructions).
    pub icount: bool,
    /// Seconds before giving up.
    pub timeout: u32,
    /// If set: wait for a line containing this, then dump the 128 KiB of SRAM to the returned
    /// file through the QEMU monitor and quit.
    pub dump_after: Option<&'a str>,
}

/// What a run printed and how it ended.
pub struct Outcome {
    /// Semihosting output.
    pub output: String,
    /// Exit status (semihosting exit code; 124 on timeout).
    pub status: Option<i32>,
    /// The SRAM dump, when asked for.
    pub ram: Option<Vec<u8>>,
}

/// Runs firmware, echoing its output as it comes.
pub fn run(r: &Run<'_>) -> Result<Outcome> {
    let sock: PathBuf =
        std::env::temp_dir().join(format!("sbsfu-qemu-{}.sock", std::process::id()));
    let ram_file = root().join("target/qemu-ram.bin");
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(&ram_file);
    let monitor = match r.dump_after {
        Some(_) => format!("unix:{},server,nowait", sock.display()),
        None => "none".to_owned(),
    };
    let mut cmd = Command::new("timeout");
    cmd.arg(r.timeout.to_string())
        .arg("qemu-system-arm")
        .args(["-M", "netduinoplus2", "-nographic", "-monitor", &monitor])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(r.elf)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if r.icount {
        cmd.args(["-icount", "shift=0"]);
    }
    for (file, addr) in r.load {
        cmd.arg("-device")
            .arg(format!("loader,file={},addr={addr:#x}", file.display()));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start QEMU (qemu-system-arm): {e}"))?;
    let stdout = child.stdout.take().ok_or("no QEMU output")?;
    let mut output = String::new();
    let mut ram = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("    {line}");
        output.push_str(&line);
        output.push('\n');
        if let Some(marker) = r.dump_after
            && line.contains(marker)
        {
            ram = Some(dump(&sock, &ram_file)?);
            break;
        }
    }
    if ram.is_some() {
        // Asked to quit through the monitor; do not wait for the timeout if it did not.
        let mut exited = false;
        for _ in 0..30 {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                exited = true;
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        if !exited {
            // The child is `timeout`: SIGTERM is passed on to QEMU, where SIGKILL would kill
            // `timeout` alone and leave QEMU running without a limit.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&sock);
    Ok(Outcome {
        output,
        status: status.code(),
        ram,
    })
}

/// Saves the SRAM of the halted machine through the monitor, then quits QEMU.
fn dump(sock: &Path, file: &Path) -> Result<Vec<u8>> {
    let mut stream = None;
    for _ in 0..50 {
        if let Ok(s) = UnixStream::connect(sock) {
            stream = Some(s);
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mut s = stream.ok_or("cannot reach the QEMU monitor")?;
    let cmd = format!("pmemsave 0x20000000 131072 \"{}\"\n", file.display());
    s.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(100));
        if std::fs::metadata(file).is_ok_and(|m| m.len() == 131_072) {
            break;
        }
    }
    let _ = s.write_all(b"quit\n");
    let _ = s.flush();
    thread::sleep(Duration::from_millis(200));
    std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))
}
