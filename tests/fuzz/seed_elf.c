/* A tiny ELF for the seed corpus of fuzz_elf: a build id, the symbols aiocopd looks up in
 * CPython, a clone-named and a .cold symbol, and one python:function__entry USDT note. */
const unsigned long long Py_Version __attribute__((used)) = 0x030b07f0;
unsigned char _PyRuntime[64] __attribute__((used)) = "xdebugpy";
__attribute__((section(".probes"), used)) unsigned short fuzz_sema;
__attribute__((noinline, used)) int fuzz_fn(int x) { return x * 3 + 1; }
__attribute__((noinline, used)) int clone_fn(int x) __asm__("fuzz_clone.lto_priv.0");
int clone_fn(int x) { return x + 7; }
__attribute__((noinline, used)) int cold_fn(int x) __asm__("fuzz_clone.cold");
int cold_fn(int x) { return x - 1; }
__asm__(
".pushsection .note.stapsdt,\"\",\"note\"\n"
".balign 4\n.4byte 8, 2f-1f, 3\n.asciz \"stapsdt\"\n"
"1: .8byte fuzz_probe, fuzz_sdt_base, fuzz_sema\n"
".asciz \"python\"\n.asciz \"function__entry\"\n.asciz \"8@%rdi\"\n"
"2: .balign 4\n.popsection\n"
".pushsection .text\n.globl fuzz_probe\nfuzz_probe: nop\nret\n.popsection\n"
".pushsection .stapsdt.base,\"a\",\"progbits\"\nfuzz_sdt_base: .space 1\n.popsection\n");
