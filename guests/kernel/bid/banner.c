/*
 * Linked into kernel-bid.elf only (not kernel.elf): the banner Linux's
 * init/version-timestamp.c defines.  `pretrans build` records it, and btvm
 * compares it with a bzImage's setup-header kernel_version string
 * (UTS_RELEASE " (" BY "@" HOST ") " UTS_VERSION, arch/x86/boot/version.c)
 * before it uses the database for that bzImage (docs/runtime.md "A
 * database with a bzImage"; tests/integration/btvm-boot.sh).
 */
__attribute__((used)) const char linux_banner[] =
    "Linux version 0.1-test (btkern@btkern) (gcc (test) 1.0) #1 btkern test guest\n";
