"""An independent view of a firmware file, for sbsfu's input tests (sbsfu-host/tests/inputs.rs).

usage: read.py READER FILE OUT [START END]

READER is `bincopy` (Intel HEX, S-records or, for a file starting with the ELF magic, ELF) or
`intelhex` (Intel HEX). Writes the image to OUT, from the lowest address to the end of the
highest, gaps filled with 0xFF, keeping only the data in [START, END) if given; prints the load
address in decimal.
"""
import sys


def main():
    reader, path, out = sys.argv[1:4]
    window = [int(a, 0) for a in sys.argv[4:6]]
    if reader == "bincopy":
        import bincopy

        f = bincopy.BinFile()
        with open(path, "rb") as fin:
            head = fin.read(4096)
        if head.startswith(b"\x7fELF"):
            f.add_elf_file(path)
        elif head.lstrip().startswith(b":"):
            f.add_ihex_file(path)
        else:
            f.add_srec_file(path)
        if window:
            f.crop(*window)
        address, data = f.minimum_address, f.as_binary(padding=b"\xff")
    elif reader == "intelhex":
        import intelhex

        h = intelhex.IntelHex(path)
        if window:
            kept = intelhex.IntelHex()
            for a in h.addresses():
                if window[0] <= a < window[1]:
                    kept[a] = h[a]
            h = kept
        h.padding = 0xFF
        address = h.minaddr()
        data = h.tobinstr(start=address, end=h.maxaddr())
    else:
        raise SystemExit(f"unknown reader {reader}")
    with open(out, "wb") as fout:
        fout.write(data)
    print(address)


main()
