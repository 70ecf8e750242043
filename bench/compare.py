#!/usr/bin/env python3
"""Side-by-side timing of sbsfu against the SHA-256 floor (`openssl dgst -sha256`) and MCUboot's
imgtool, on this machine.

Every command runs `--runs` times, interleaved (one run of each command, then the next round), so
that a change in machine load hits all of them alike; the table gives medians and the ratio to
the floor of the same size. imgtool, when asked for, is compared with `sbsfu sign` in a second,
separate set of runs. Peak RSS comes from GNU time, in a separate run. Before each timed run, its output is
deleted (no run pays for freeing a previous output's pages), the page cache is synced and the
machine left idle for 0.1 s (no run shares the two cores with the kernel writing back or freeing
an earlier run's output). Verify runs use the container the sign run before them wrote.

usage: compare.py [--sbsfu PATH] [--sizes 1,16,64] [--runs 7] [--imgtool] [--rss-gib N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "keys-example"


GNU_TIME = "/usr/bin/time"


def timed(cmd, cwd):
    """Wall seconds of one run of `cmd`, which must succeed."""
    start = time.perf_counter()
    p = subprocess.run(list(map(str, cmd)), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stderr.decode(errors='replace')}")
    return elapsed


def peak_rss(cmd, cwd):
    """Peak RSS (KiB) of one run of `cmd`, from GNU time (`%M`), in a run of its own: GNU time
    forks itself, a small program, before exec (a child forked from this Python process would
    report Python's own 16 MiB), and wrapping the timed runs in it would slow them."""
    rss_file = Path(cwd) / ".rss"
    p = subprocess.run([GNU_TIME, "-f", "%M", "-o", str(rss_file), *map(str, cmd)], cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stderr.decode(errors='replace')}")
    return int(rss_file.read_text().split()[-1])


def make_image(path, mib):
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def imgtool_setup(work):
    """imgtool from the package index, in a virtualenv of its own; its keys."""
    venv = work / "imgtool-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = venv / "bin" / "pip"
    subprocess.run([str(pip), "install", "--quiet", "imgtool"], check=True)
    imgtool = venv / "bin" / "imgtool"
    subprocess.run([str(imgtool), "keygen", "-k", "ed25519.pem", "-t", "ed25519"], cwd=work, check=True)
    subprocess.run([str(imgtool), "keygen", "-k", "x25519.pem", "-t", "x25519"], cwd=work, check=True)
    version = subprocess.run([str(imgtool), "version"], capture_output=True, text=True).stdout.strip()
    return imgtool, version


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sbsfu", default=str(ROOT / "target" / "release" / "sbsfu"))
    ap.add_argument("--sizes", default="1,16,64", help="image sizes in MiB")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--imgtool", action="store_true", help="also time imgtool (pip install into a temporary virtualenv)")
    ap.add_argument("--rss-gib", type=int, default=0, help="also sign and verify an image of N GiB and report peak RSS")
    args = ap.parse_args()
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit(f"{GNU_TIME} (GNU time, Debian package `time`) is needed for peak RSS")
    sbsfu = str(Path(args.sbsfu).resolve())
    sizes = [int(s) for s in args.sizes.split(",")]

    work = Path(tempfile.mkdtemp(prefix="sbsfu-bench-"))
    try:
        imgtool = None
        if args.imgtool:
            imgtool, imgtool_version = imgtool_setup(work)
        sign = [sbsfu, "sign", "--key", str(KEYS / "signing.pem"), "--encrypt-key", str(KEYS / "device.key"),
                "--allow-dev-key", "--version", "1.0.0", "--security-counter", "1", "--target", "bench",
                "--load-address", "0x08020000"]
        verify = [sbsfu, "verify", "--pubkey", str(KEYS / "signing.pub.pem"), "--decrypt-key", str(KEYS / "device.key")]

        # Each case: (label, size MiB or None, command, output to delete before each run).
        floor_cases = [("start-up: `sbsfu --version`", None, [sbsfu, "--version"], None)]
        imgtool_cases = []
        if imgtool:
            imgtool_cases.append(("start-up: `sbsfu --version`", None, [sbsfu, "--version"], None))
            imgtool_cases.append(("start-up: `imgtool version`", None, [str(imgtool), "version"], None))
        for mib in sizes:
            img = work / f"img{mib}.bin"
            make_image(img, mib)
            out = work / f"img{mib}.sfu"
            sign_case = ("sbsfu sign --encrypt-key", mib, sign + ["--in", str(img), "--out", str(out)], out)
            floor_cases += [
                ("floor: openssl dgst -sha256", mib, ["openssl", "dgst", "-sha256", str(img)], None),
                sign_case,
                ("sbsfu verify --decrypt-key", mib, verify + [str(out)], None),
            ]
            if imgtool:
                slot = ((mib << 20) + (1 << 20) + 4095) // 4096 * 4096
                imgtool_out = work / f"img{mib}.imgtool"
                imgtool_cases += [
                    sign_case,
                    ("imgtool sign --encrypt (ed25519, x25519)", mib,
                     [str(imgtool), "sign", "-k", "ed25519.pem", "-E", "x25519.pem", "--header-size", "0x400",
                      "--pad-header", "--align", "4", "--version", "1.0.0", "--slot-size", str(slot),
                      "--max-sectors", str(slot // 4096), str(img), str(imgtool_out)], imgtool_out),
                ]

        print(f"machine: {os.cpu_count()} cores; {cpu_model()}; {os.uname().sysname} {os.uname().release}")
        print(f"medians of {args.runs} interleaved runs\n")
        # The floor comparison runs on its own: imgtool's runs (hundreds of MiB, in Python) would
        # disturb the caches of the runs after them.
        table(floor_cases, run_cases(floor_cases, args.runs, work), "floor")
        if imgtool:
            print(f"\nimgtool {imgtool_version}, in a separate set of interleaved runs:\n")
            medians = run_cases(imgtool_cases, args.runs, work)
            table(imgtool_cases, medians, "sbsfu sign")
            m = {(c[0], c[1]): statistics.median(r) for c, r in zip(imgtool_cases, medians)}
            one = sizes[0]
            print(f"\nstart-up: imgtool / sbsfu = "
                  f"{m[('start-up: `imgtool version`', None)] / m[('start-up: `sbsfu --version`', None)]:.0f}x; "
                  f"{one} MiB sign: imgtool / sbsfu = "
                  f"{m[('imgtool sign --encrypt (ed25519, x25519)', one)] / m[('sbsfu sign --encrypt-key', one)]:.1f}x")

        if args.rss_gib:
            big = work / "big.bin"
            make_image(big, args.rss_gib * 1024)
            for f in work.glob("img[0-9]*"):
                f.unlink()
            big_sign = sign + ["--in", str(big), "--out", str(work / "big.sfu")]
            t_sign = timed(big_sign, work)
            t_verify = timed(verify + [str(work / "big.sfu")], work)
            rss_sign = peak_rss(big_sign, work)
            rss_verify = peak_rss(verify + [str(work / "big.sfu")], work)
            print(f"\n{args.rss_gib} GiB image: sign {t_sign:.2f} s, peak RSS {rss_sign / 1024:.1f} MiB; "
                  f"verify {t_verify:.2f} s, peak RSS {rss_verify / 1024:.1f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_cases(cases, runs, work):
    """Timed runs of every case, interleaved; returns the times per case. A first, untimed run
    of each (measuring peak RSS) puts images and binaries in the page cache and makes the
    containers that the verify cases read."""
    for case in cases:
        case_rss[id(case)] = peak_rss(case[2], work)
    results = [[] for _ in cases]
    for _ in range(runs):
        for i, (_, _, cmd, out) in enumerate(cases):
            if out is not None and out.exists():
                out.unlink()
            # Let the kernel finish writing back and freeing earlier runs' outputs, so that no
            # run shares the two cores with that work.
            os.sync()
            time.sleep(0.1)
            results[i].append(timed(cmd, work))
    return results


case_rss = {}


def table(cases, results, reference):
    """Medians, fastest runs and peak RSS; the ratio to the `reference` case of the same size."""
    print(f"| image | command | median | fastest | median / {reference.split(':')[0]} | peak RSS |")
    print("|---|---|---|---|---|---|")
    base = {}
    for case, times in zip(cases, results):
        if case[0].startswith(reference):
            base[case[1]] = statistics.median(times)
    for case, times in zip(cases, results):
        label, mib = case[0], case[1]
        t = statistics.median(times)
        ratio = f"{t / base[mib]:.2f}x" if mib in base else "-"
        size = f"{mib} MiB" if mib else "-"
        print(f"| {size} | {label} | {t * 1000:.1f} ms | {min(times) * 1000:.1f} ms | {ratio} | "
              f"{case_rss[id(case)] / 1024:.1f} MiB |")


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
