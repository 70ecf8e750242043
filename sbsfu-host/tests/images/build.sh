#!/bin/sh
# Regenerates the test images from app.s and app.ld with GNU binutils for arm-none-eabi.
# app.bin fills gaps with 0xFF, as sbsfu does (objcopy's default would be 0x00).
set -eu
cd "$(dirname "$0")"
arm-none-eabi-as -mcpu=cortex-m4 -mthumb -o app.o app.s
arm-none-eabi-ld -T app.ld -o app.elf app.o
arm-none-eabi-objcopy -O ihex app.elf app.hex
arm-none-eabi-objcopy -O binary --gap-fill 0xff app.elf app.bin
rm app.o
