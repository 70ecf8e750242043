@ A tiny Cortex-M image whose initialised data is stored in flash after the code, at an address
@ apart from it (a gap), with a .bss that takes no file space: what `sign --in` must flatten.
@ Rebuild with ./build.sh (GNU binutils for arm-none-eabi).
    .syntax unified
    .thumb

    .section .vectors, "a"
    .word 0x20004000            @ initial stack pointer
    .word reset + 1             @ reset handler (Thumb)

    .text
    .thumb_func
reset:
    ldr r0, =counter
    ldr r1, [r0]
    adds r1, r1, #1
    str r1, [r0]
    b reset

    .data
counter:
    .word 0x11223344
greeting:
    .ascii "sbsfu ELF test\0\0"

    .bss
scratch:
    .space 512
