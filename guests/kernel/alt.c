/*
 * Boot-time patching of the guest's own text, as Linux's
 * apply_alternatives does it (arch/x86/kernel/alternative.c): for each
 * record of .altinstructions (guests/kernel/alt_sites.S) whose CPUID feature is
 * present (or absent, for an inverted one), the site gets the replacement,
 * a 5-byte call's rel32 fixed up for its new place, a 5-byte jmp
 * recomputed (2 bytes when the target is near), the rest NOP-padded with
 * Linux's NOPs.  pretrans predicts the result (pretrans/kpatch), so a warm
 * boot finds the patched blocks in the database.
 */
#include "guests/kernel/arch.h"
#include "guests/kernel/kernel.h"

struct alt_instr {
	int32_t instr_offset, repl_offset;
	uint16_t cpuid;
	uint8_t instrlen, replacementlen;
} __attribute__((packed));

extern struct alt_instr __alt_instructions[], __alt_instructions_end[];
int alt_sse2(void), alt_call(void), alt_never(void), alt_jmp(void), alt_pad(void);

static unsigned alt_patched, alt_sites;

/* Linux's capability words the guest knows: 0 (CPUID 1 EDX), 1 (0x80000001
 * EDX), 3 (ALWAYS only), 4 (CPUID 1 ECX), 6 (0x80000001 ECX), 9, 16, 18
 * (leaf 7 EBX, ECX, EDX). */
static bool has_feature(unsigned f)
{
	uint32_t a, b, c, d, max, maxext, w = 0;
	unsigned word = f / 32, bit = f % 32;
	cpuid(0, 0, &max, &b, &c, &d);
	cpuid(0x80000000, 0, &maxext, &b, &c, &d);
	switch (word) {
	case 0:
	case 4:
		cpuid(1, 0, &a, &b, &c, &d);
		w = word == 0 ? d : c;
		break;
	case 1:
	case 6:
		if (maxext >= 0x80000001) {
			cpuid(0x80000001, 0, &a, &b, &c, &d);
			w = word == 1 ? d : c;
		}
		break;
	case 3:
		w = 1u << 21;
		break;
	case 9:
	case 16:
	case 18:
		if (max >= 7) {
			cpuid(7, 0, &a, &b, &c, &d);
			w = word == 9 ? b : word == 16 ? c : d;
		}
		break;
	}
	return (w >> bit) & 1;
}

static void add_nops(uint8_t *p, unsigned len)
{
	static const uint8_t nops[9][8] = {
	    {0},
	    {0x90},
	    {0x66, 0x90},
	    {0x0f, 0x1f, 0x00},
	    {0x0f, 0x1f, 0x40, 0x00},
	    {0x0f, 0x1f, 0x44, 0x00, 0x00},
	    {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
	    {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
	    {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
	};
	while (len) {
		unsigned n = len > 8 ? 8 : len;
		memcpy(p, nops[n], n);
		p += n;
		len -= n;
	}
}

void alt_apply(void)
{
	for (struct alt_instr *a = __alt_instructions; a < __alt_instructions_end; a++) {
		uint8_t *instr = (uint8_t *)&a->instr_offset + a->instr_offset;
		uint8_t *repl = (uint8_t *)&a->repl_offset + a->repl_offset;
		uint8_t buf[32];
		alt_sites++;
		if (a->instrlen > sizeof(buf) || a->replacementlen > a->instrlen ||
		    has_feature(a->cpuid & 0x7fff) == !!(a->cpuid & 0x8000))
			continue;
		memcpy(buf, repl, a->replacementlen);
		if (a->replacementlen == 5 && buf[0] == 0xe8) {
			int32_t d;
			memcpy(&d, buf + 1, 4);
			d += (int32_t)(repl - instr);
			memcpy(buf + 1, &d, 4);
		}
		if (a->replacementlen == 5 && (repl[0] == 0xe9 || repl[0] == 0xeb)) {
			int32_t d;
			memcpy(&d, buf + 1, 4);
			uint8_t *tgt = repl + 5 + d;
			int32_t n = (int32_t)(tgt - instr);
			if (tgt >= instr ? n - 2 <= 127 : ((n - 2) & 0xff) == n - 2) {
				buf[0] = 0xeb;
				buf[1] = (uint8_t)(int8_t)(n - 2);
				add_nops(buf + 2, 3);
			} else {
				buf[0] = 0xe9;
				n -= 5;
				memcpy(buf + 1, &n, 4);
			}
		}
		add_nops(buf + a->replacementlen, a->instrlen - a->replacementlen);
		memcpy(instr, buf, a->instrlen);
		alt_patched++;
	}
	/* the patched code runs after a serializing instruction */
	uint32_t a, b, c, d;
	cpuid(0, 0, &a, &b, &c, &d);
}

void alt_report(void)
{
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	int sse2 = (d >> 26) & 1;
	bool ok = alt_sse2() == sse2 && alt_call() == 2 && alt_never() == 3 && alt_jmp() == 6 &&
		  alt_pad() == 0;
	printk("# alt: %u of %u sites patched, %s\n", alt_patched, alt_sites,
	       ok ? "results ok" : "results WRONG");
}
