#!/bin/sh
# Rebuilds headers-in-segment.elf (see README.md) with GNU binutils for arm-none-eabi, from the
# test application's source in ../images.
set -eu
cd "$(dirname "$0")"
arm-none-eabi-as -mcpu=cortex-m4 -mthumb -o app.o ../images/app.s
arm-none-eabi-ld -T headers-in-segment.ld -o headers-in-segment.elf app.o
rm app.o
