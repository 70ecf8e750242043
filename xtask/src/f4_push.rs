//! `cargo xtask f4-test`, delivery: `sbsfu push --tcp` into the example application running on
//! the emulated STM32F405, which receives on USART2 (QEMU's second serial port, a TCP server
//! here) with `sbsfu-link` and stages the container; then the reset, and the new version prints
//! itself. Once over a clean link, once through a proxy that drops, flips and stalls bytes and
//! cuts the link half way, where a second push resumes.
//!
//! QEMU's flash is ROM: the application stages into the flash image kept in a host file
//! (semihosting, `f4/app/src/receive.rs`), and the install at the reset is the boot manager run
//! on that image on the host (as `provision` does), after which the example bootloader verifies
//! and starts the new version under QEMU.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sbsfu_device::TrustedKey;
use sbsfu_device::boot::{BootFlash, BootManager};
use sbsfu_device::format::DeviceKey;
use sbsfu_device::sim::SimFlash;
use sbsfu_f4::config::{CHUNK, boot_config};
use sbsfu_f4::keys::{DEVICE_KEY, SIGNING_KEY};

use super::{IMAGE_FROM, LAYOUT, Scenario, boot_run, flash_file, provision, read, write};
use crate::{Result, root, step};

/// The flash image the receiving application writes through semihosting (see receive.rs).
const HOST_FLASH: &str = "target/f4-test/push-flash.bin";

/// The receiving application, built as `version`, signed and encrypted with security counter
/// `counter`: its container.
fn receiving_app(cli: &Path, version: &str, counter: u32) -> Result<Vec<u8>> {
    let elf = super::firmware_version(
        "sbsfu-f4-app",
        "f4-app",
        &["receive"],
        super::Sha2::Compact,
        Some(version),
    )?;
    let out = format!("target/f4-test/app-{version}.sfu");
    let status = Command::new(cli)
        .current_dir(root())
        .args(["sign", "--key", "keys-example/signing.pem"])
        .args([
            "--encrypt-key",
            "keys-example/device.key",
            "--allow-dev-key",
        ])
        .args(["--version", version, "--target", "stm32f405"])
        .args(["--security-counter", &counter.to_string()])
        .args(["--chunk-size", &CHUNK.to_string(), "--out", &out])
        .arg("--in")
        .arg(&elf)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("signing {} failed", elf.display()));
    }
    read(&root().join(out))
}

/// A reset, for the flash image in `image`: the boot manager on the host (QEMU's flash is ROM).
fn reset(image: Vec<u8>) -> Result<Vec<u8>> {
    let mut flash = SimFlash::stm32f405();
    flash.data_mut().copy_from_slice(&image);
    let signers = [TrustedKey::from_bytes(&SIGNING_KEY).map_err(|e| e.to_string())?];
    let device_keys = [DeviceKey::from_bytes(DEVICE_KEY)];
    let config = boot_config(&signers, &device_keys);
    let cell = RefCell::new(&mut flash);
    let mut regions = LAYOUT
        .regions(&BootFlash::stm32f405(&cell))
        .map_err(|e| e.to_string())?;
    let boot = BootManager::<CHUNK>::new(&config, &mut regions, None)
        .and_then(|mut m| m.run())
        .map_err(|e| format!("the reset: {e}"))?;
    println!(
        "    reset: the boot manager installed app {} (on trial: {})",
        boot.header.version, boot.trial
    );
    let data = cell.borrow().data().to_vec();
    Ok(data)
}

/// QEMU running the bootloader and the application, USART2 on a TCP server at `port`; its
/// output lines come through the returned channel.
fn start_qemu(boot: &Path, flash: &Path, port: u16) -> Result<(Child, mpsc::Receiver<String>)> {
    let mut child = Command::new("timeout")
        .arg("300")
        .arg("qemu-system-arm")
        .args(["-M", "netduinoplus2", "-nographic", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        // Its timers wake QEMU's main loop regularly, which then moves more bytes into the
        // USART (see `push_until_done`).
        .args(["-icount", "shift=auto"])
        .args(["-serial", "null", "-serial"])
        .arg(format!("tcp:127.0.0.1:{port},server=on,wait=off"))
        .arg("-kernel")
        .arg(boot)
        .arg("-device")
        .arg(format!(
            "loader,file={},addr={IMAGE_FROM:#x}",
            flash.display()
        ))
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let stdout = child.stdout.take().ok_or("no QEMU output")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            println!("    {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok((child, rx))
}

/// Waits for a line containing `marker`; returns every line seen.
fn wait_for(lines: &mpsc::Receiver<String>, marker: &str, seen: &mut Vec<String>) -> Result {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            let hit = line.contains(marker);
            seen.push(line);
            if hit {
                return Ok(());
            }
        }
    }
    Err(format!("QEMU never printed `{marker}`"))
}

/// What a fault-injecting proxy does to the bytes towards the device.
#[derive(Clone, Copy)]
struct Faults {
    /// Close both sides once this many bytes went to the device.
    cut_after: Option<usize>,
    seed: u64,
}

/// A proxy on a free local port to the device at `upstream`: one connection, with `faults` on
/// the way to the device (a piece dropped, a bit flipped, a 300 ms stall, each about one read
/// in 150), replies passed as they are. Returns its port.
fn proxy(upstream: u16, faults: Faults) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        let Ok(device) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        let (Ok(mut c_read), Ok(mut d_write)) = (client.try_clone(), device.try_clone()) else {
            return;
        };
        let (mut d_read, mut c_write) = (device, client);
        let back = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = d_read.read(&mut buf) {
                if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = c_write.shutdown(Shutdown::Both);
        });
        let mut rng = faults.seed | 1;
        let mut sent = 0usize;
        let mut buf = [0u8; 512];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 {
                break;
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let piece = &mut buf[..n];
            match rng % 150 {
                0 => continue,
                1 => piece[(rng >> 8) as usize % n] ^= 1 << ((rng >> 16) % 8),
                2 => thread::sleep(Duration::from_millis(300)),
                _ => {}
            }
            if faults.cut_after.is_some_and(|c| sent + n > c) {
                break;
            }
            if d_write.write_all(piece).is_err() {
                break;
            }
            sent += n;
        }
        let _ = d_write.shutdown(Shutdown::Both);
        let _ = c_read.shutdown(Shutdown::Both);
        let _ = back.join();
    });
    Ok(port)
}

/// `sbsfu push --json` to `port`; its JSON output, and whether it succeeded.
fn push(cli: &Path, port: u16, container: &str, extra: &[&str]) -> Result<(bool, String)> {
    let out = Command::new(cli)
        .current_dir(root())
        .args([
            "push",
            "--tcp",
            &format!("127.0.0.1:{port}"),
            container,
            "--json",
        ])
        .args(extra)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("    push: {}", err.trim());
    Ok((out.status.success(), text))
}

/// A number field of push's JSON output.
fn field(json: &str, name: &str) -> Option<u64> {
    let at = json.find(&format!("\"{name}\": "))? + name.len() + 4;
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Pushes `container` (with `--reset`) until the device has it, through a new fault-injecting
/// proxy each time if `faults` is given; a push after a failed one must resume. Returns the JSON
/// of the push that succeeded.
///
/// More than one push may be needed even without faults: QEMU 7.2's TCP serial backend now and
/// then stops moving bytes into the USART (the guest polls an empty data register while the
/// host's bytes wait in the socket: QEMU's main loop, which moves them, is not woken when the
/// guest reads the data register); a new connection starts it again, and the push resumes. So
/// the pushes go on while each gets further than the one before.
fn push_until_done(cli: &Path, port: u16, container: &str, faults: Option<u64>) -> Result<String> {
    let mut acked = None;
    for attempt in 0..PUSH_ATTEMPTS {
        let to = match faults {
            Some(seed) => proxy(
                port,
                Faults {
                    cut_after: None,
                    seed: seed.rotate_left(7 * (attempt + 1)),
                },
            )?,
            None => port,
        };
        let (ok, json) = push(cli, to, container, &["--reset"])?;
        if ok {
            if !json.contains("\"result\": \"pending\"") {
                return Err(format!(
                    "the push did not leave the container pending: {json}"
                ));
            }
            return Ok(json);
        }
        // "... after N bytes were acknowledged ...": it must have got further.
        let now = json
            .split("after ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        if now.is_none() || now <= acked {
            return Err(format!("a push got no further than the one before: {json}"));
        }
        acked = now;
    }
    Err(format!(
        "{PUSH_ATTEMPTS} pushes did not deliver {container}"
    ))
}

/// Pushes `push_until_done` makes at most.
const PUSH_ATTEMPTS: u32 = 40;

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// One delivery: the application 1.0.0 runs, 1.1.0 is pushed (through `faults` if given), the
/// reset installs it, and it prints itself. Returns where the last push resumed, under faults.
fn deliver(cli: &Path, boot: &Path, v1: &[u8], faults: Option<u64>) -> Result<Option<u64>> {
    let image = provision(v1, Scenario::Idle)?;
    write(&root().join(HOST_FLASH), &image)?;
    let rom = flash_file(&image, "flash-push.bin")?;
    let port = free_port()?;
    let (mut qemu, lines) = start_qemu(boot, &rom, port)?;
    let mut seen = Vec::new();
    let result = (|| {
        wait_for(&lines, "f4-app: receiving updates on USART2", &mut seen)?;
        let new = "target/f4-test/app-1.1.0.sfu";
        let len = std::fs::metadata(root().join(new))
            .map_err(|e| e.to_string())?
            .len();
        if let Some(seed) = faults {
            let cut = Faults {
                cut_after: Some(len as usize * 3 / 4),
                seed,
            };
            let (ok, _) = push(cli, proxy(port, cut)?, new, &[])?;
            if ok {
                return Err("the push through a link cut half way succeeded".into());
            }
        }
        let json = push_until_done(cli, port, new, faults)?;
        let (from, sent) = (field(&json, "resumed_from"), field(&json, "bytes_sent"));
        println!(
            "    the last push resumed from byte {}, sent {} of {len} bytes ({} frames again)",
            from.unwrap_or(0),
            sent.unwrap_or(0),
            field(&json, "retransmits").unwrap_or(0)
        );
        // Resuming means the bytes below `resumed_from` are never sent again. `bytes_sent` counts
        // retransmissions too, which the injected faults and QEMU's serial stalls make vary from
        // run to run, so it is reported, not compared with the container's length.
        let resumed = faults.map(|_| from.unwrap_or(0));
        if faults.is_some() && !from.is_some_and(|f| f > 0 && f < len) {
            return Err(format!("the push after the cut did not resume: {json}"));
        }
        wait_for(
            &lines,
            "f4-app: container staged, reset requested",
            &mut seen,
        )?;
        Ok(resumed)
    })();
    let _ = qemu.wait();
    let resumed = result?;
    let installed = reset(read(&root().join(HOST_FLASH))?)?;
    let file = flash_file(&installed, "flash-pushed.bin")?;
    let out = boot_run(boot, &[(&file, IMAGE_FROM)])?;
    if !out.output.contains("sbsfu-boot: verified app 1.1.0")
        || !out
            .output
            .contains("f4-app 1.1.0: hello from the application")
    {
        return Err("after the reset, the new version did not start".into());
    }
    Ok(resumed)
}

/// The delivery scenarios of `cargo xtask f4-test`; `boot` is the example bootloader's ELF.
pub fn push_scenarios(cli: &Path, boot: &Path) -> Result {
    step(
        "delivery: the application receives 1.1.0 on USART2 (sbsfu push --tcp), the reset installs it",
    );
    let v1 = receiving_app(cli, "1.0.0", 1)?;
    receiving_app(cli, "1.1.0", 2)?;
    deliver(cli, boot, &v1, None)?;
    step(
        "delivery through a proxy that drops, flips and stalls bytes and cuts the link half way: \
         a second push resumes",
    );
    let from = deliver(cli, boot, &v1, Some(0x5EED_F00D))?;
    let len = read(&root().join("target/f4-test/app-1.1.0.sfu"))?.len();
    println!(
        "    the resumed push started at byte {} of the container's {len}: it did not send those again",
        from.unwrap_or(0)
    );
    Ok(())
}
