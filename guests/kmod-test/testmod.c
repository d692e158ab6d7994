/*
 * testmod: the test guest's loadable module (lib/modules/testmod.ko in the
 * initrd), an ET_REL object built with -mcmodel=kernel.  The guest kernel
 * loads it with guests/lib/kmodld.c and calls kmod_init().
 *
 * Contract: references only kmod_printf and kmod_test_counter from the
 * kernel; kmod_init adds 42 to kmod_test_counter, prints "testmod: init"
 * and returns 0.  It deliberately produces each relocation the loader must
 * handle (checked by `readelf -r` in the build):
 *   R_X86_64_PLT32  call kmod_printf
 *   R_X86_64_PC32   rip-relative access to kmod_test_counter / own data
 *   R_X86_64_32S    absolute address of an own array used as an index base
 *   R_X86_64_64     a pointer stored in .data
 * plus a .rodata string, a .data variable and a .bss variable of its own.
 */
extern int kmod_printf(const char *fmt, ...);
extern long kmod_test_counter;

int kmod_init(void);

/* .rodata */
static const char testmod_banner[] = "testmod: init";
static const long testmod_table[4] = {10, 11, 12, 9};

/* .data: a pointer to our own .rodata (R_X86_64_64 in .rela.data). */
const char *volatile testmod_name_ptr = testmod_banner;
long testmod_data_var = 7;

/* .bss */
long testmod_bss_var;
volatile int testmod_index;

int kmod_init(void)
{
	long sum = 0;

	/* Array indexing with a variable index: -mcmodel=kernel addresses
	 * testmod_table as disp32(,%reg,8) with an R_X86_64_32S relocation. */
	for (testmod_index = 0; testmod_index < 4; testmod_index++)
		sum += testmod_table[testmod_index];
	/* sum == 42 */
	testmod_bss_var = sum;
	testmod_data_var += testmod_bss_var; /* 49 */
	if (testmod_data_var != 49)
		return -1;
	kmod_test_counter += testmod_bss_var;
	kmod_printf("%s\n", testmod_name_ptr);
	return 0;
}
