/*
 * C entry of the test guest kernel.  boot.S calls kmain(kind, pa) with the
 * physical address of the Linux boot_params (64-bit boot protocol) or of the
 * PVH hvm_start_info; both are parsed into struct boot_info (memory map,
 * command line, initrd) while the boot page tables still map 0-1 GiB at
 * KERNEL_VMA.  Then: CPU features, GDT/TSS/IDT, page allocator, kernel page
 * tables, PIC/PIT/TSC/RTC, syscalls, scheduler, and the test runner thread.
 * Boot structures are untrusted input: counts and addresses are bounded.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"
#include "guests/kernel/mm.h"
#include "guests/kernel/sched.h"
#include "guests/kernel/trap.h"
#include "guests/kernel/vm.h"
#include "guests/lib/cpio.h"

#define BOOT_LINUX64   1
#define BOOT_PVH       2
#define BOOT_MAP_LIMIT (1ul << 30) /* what the boot page tables map */

#define PVH_MAGIC 0x336ec578u

struct boot_info boot_info;

/* Pointer to [pa, pa+len) through the boot mapping, or NULL if outside. */
static const void *boot_ptr(uint64_t pa, uint64_t len)
{
	if (pa == 0 || pa >= BOOT_MAP_LIMIT || len > BOOT_MAP_LIMIT - pa)
		return NULL;
	return (const void *)(pa + KERNEL_VMA);
}

static void copy_cmdline(uint64_t pa)
{
	const char *s = boot_ptr(pa, 1);
	size_t i = 0;
	if (!s)
		return;
	for (; i + 1 < sizeof(boot_info.cmdline) && pa + i < BOOT_MAP_LIMIT && s[i]; i++)
		boot_info.cmdline[i] = s[i];
	boot_info.cmdline[i] = 0;
}

static void add_mem(uint64_t addr, uint64_t size, uint32_t type)
{
	if (boot_info.nmem < BOOT_MAX_MEM && size)
		boot_info.mem[boot_info.nmem++] = (struct boot_mem){addr, size, type};
}

static int parse_linux(uint64_t pa)
{
	const uint8_t *bp = boot_ptr(pa, 4096);
	if (!bp)
		return -EINVAL;
	boot_info.protocol = "linux64";
	boot_info.info_pa = pa;
	boot_info.info_size = 4096;
	unsigned n = bp[0x1e8];
	if (n > 128)
		n = 128;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + 0x2d0 + i * 20;
		uint64_t addr, size;
		uint32_t type;
		memcpy(&addr, e, 8);
		memcpy(&size, e + 8, 8);
		memcpy(&type, e + 16, 4);
		add_mem(addr, size, type);
	}
	uint32_t cmd, rd_img, rd_size;
	memcpy(&cmd, bp + 0x228, 4);
	memcpy(&rd_img, bp + 0x218, 4);
	memcpy(&rd_size, bp + 0x21c, 4);
	uint32_t ext_img, ext_size, ext_cmd;
	memcpy(&ext_cmd, bp + 0x0c8, 4);
	uint64_t cmd64 = cmd | ((uint64_t)ext_cmd << 32);
	memcpy(&ext_img, bp + 0x0c0, 4);
	memcpy(&ext_size, bp + 0x0c4, 4);
	copy_cmdline(cmd64);
	boot_info.initrd_pa = rd_img | ((uint64_t)ext_img << 32);
	boot_info.initrd_size = rd_size | ((uint64_t)ext_size << 32);
	return 0;
}

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static int parse_pvh(uint64_t pa)
{
	const struct hvm_start_info *si = boot_ptr(pa, sizeof(*si));
	if (!si || si->magic != PVH_MAGIC)
		return -EINVAL;
	boot_info.protocol = "pvh";
	boot_info.info_pa = pa;
	boot_info.info_size = sizeof(*si);
	copy_cmdline(si->cmdline_paddr);
	if (si->version >= 1 && si->memmap_entries) {
		unsigned n = MIN(si->memmap_entries, 128u);
		const struct hvm_memmap_entry *m = boot_ptr(si->memmap_paddr, n * sizeof(*m));
		for (unsigned i = 0; m && i < n; i++)
			add_mem(m[i].addr, m[i].size, m[i].type);
	}
	if (si->nr_modules) {
		const struct hvm_modlist_entry *mod = boot_ptr(si->modlist_paddr, sizeof(*mod));
		if (mod) {
			boot_info.initrd_pa = mod->paddr;
			boot_info.initrd_size = mod->size;
		}
	}
	return 0;
}

bool initrd_present(void)
{
	return boot_info.initrd_size != 0;
}

static const void *initrd_data(void)
{
	return (const void *)pa_to_va(boot_info.initrd_pa);
}

int initrd_find(const char *path, const void **data, size_t *size)
{
	struct cpio_entry e;
	if (!initrd_present())
		return -ENOENT;
	enum bt_status s = cpio_find(initrd_data(), boot_info.initrd_size, path, &e);
	if (s != BT_OK)
		return s == BT_ERR_NOTFOUND ? -ENOENT : -EIO;
	if ((e.mode & CPIO_S_IFMT) != CPIO_S_IFREG)
		return -ENOENT;
	*data = e.data;
	*size = e.size;
	return 0;
}

static void check_initrd(void)
{
	if (!boot_info.initrd_size)
		return;
	uint64_t end = boot_info.initrd_pa + boot_info.initrd_size;
	if (end < boot_info.initrd_pa || end > pmm_max_pa()) {
		printk("# initrd at 0x%lx size %lu lies outside RAM: ignored\n",
		       (unsigned long)boot_info.initrd_pa, (unsigned long)boot_info.initrd_size);
		boot_info.initrd_size = 0;
	}
}

void kmain(int kind, uint64_t boot_pa);
void kmain(int kind, uint64_t boot_pa)
{
	uart_init();
	printk("btkern guest %s booting\n", GK_VERSION);
	/* on the boot page tables, text still writable, as Linux patches
	 * itself early */
	alt_apply();
	/* Exceptions are reported (panic + exit port) from here on, not triple faults. */
	gdt_init();
	idt_init();
	int r = kind == BOOT_PVH ? parse_pvh(boot_pa) : parse_linux(boot_pa);
	if (r)
		panic("bad boot information (%s entry, structure at 0x%lx)",
		      kind == BOOT_PVH ? "PVH" : "64-bit", (unsigned long)boot_pa);
	printk("# boot: %s protocol, cmdline '%s'\n", boot_info.protocol, boot_info.cmdline);
	for (unsigned i = 0; i < boot_info.nmem; i++)
		printk("# e820: [0x%lx-0x%lx) type %u\n", (unsigned long)boot_info.mem[i].addr,
		       (unsigned long)(boot_info.mem[i].addr + boot_info.mem[i].size),
		       boot_info.mem[i].type);

	cpu_init_features();
	pmm_init();
	vm_init();
	check_initrd();
	printk("# mm: %lu KiB free of %lu KiB usable; initrd %lu bytes at 0x%lx\n",
	       (unsigned long)(pmm_free_pages() * 4), (unsigned long)(pmm_total_pages() * 4),
	       (unsigned long)boot_info.initrd_size, (unsigned long)boot_info.initrd_pa);
	printk("# cpu: nx %d smep %d smap %d\n", cpu_has_nx, cpu_has_smep, cpu_has_smap);
	alt_report();

	pic_init();
	tsc_calibrate();
	struct rtc_time t;
	if (rtc_read(&t) == 0)
		boot_epoch = rtc_to_epoch(&t);
	syscall_init();
	fpu_init();
	sched_init();
	pit_init();
	irq_register(4, uart_irq);
	pic_unmask(4);

	if (!task_create_kthread("runner", runner_main, NULL))
		panic("cannot create the runner thread");
	sti();
	sched_idle_loop();
}
