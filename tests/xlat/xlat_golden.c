/*
 * xlat_golden: translate the guest bytes of a golden .in file and print a
 * listing (guest instructions, host code with the Zydis formatter, exits,
 * pc map).  tests/xlat/golden.sh compares it with the .out file or rebases.
 *
 * .in format:  `start 0xADDR` then `bytes HEX HEX ...` lines; `#` comments.
 * Blocks are translated one after another from start until the bytes end.
 */
#include "pretrans/xlat/xlat.h"

#include <Zydis/Zydis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct golden {
	gva_t start;
	uint8_t bytes[4096];
	size_t n;
};

static size_t golden_read(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct golden *g = opaque;
	if (va < g->start || va >= g->start + g->n)
		return 0;
	size_t n = BT_MIN(len, (size_t)(g->start + g->n - va));
	memcpy(buf, g->bytes + (va - g->start), n);
	return n;
}

static int parse(FILE *f, struct golden *g)
{
	char line[4096];
	g->n = 0;
	g->start = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (!strncmp(line, "start ", 6)) {
			g->start = strtoull(line + 6, NULL, 0);
		} else if (!strncmp(line, "bytes", 5)) {
			char *p = line + 5, *end;
			for (;;) {
				unsigned long v = strtoul(p, &end, 16);
				if (end == p)
					break;
				if (g->n >= sizeof(g->bytes) || v > 0xff)
					return -1;
				g->bytes[g->n++] = (uint8_t)v;
				p = end;
			}
		} else {
			return -1;
		}
	}
	return g->n ? 0 : -1;
}

static void print_insns(const uint8_t *p, size_t n, uint64_t addr, const char *indent)
{
	ZydisDisassembledInstruction in;
	size_t off = 0;
	while (off < n) {
		if (ZYAN_FAILED(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, addr + off,
						      p + off, n - off, &in))) {
			printf("%s%06zx  %02x  (bad)\n", indent, off, p[off]);
			off++;
			continue;
		}
		char hex[64] = "";
		for (unsigned i = 0; i < in.info.length && i < 15; i++)
			snprintf(hex + 2 * i, sizeof(hex) - 2 * i, "%02x", p[off + i]);
		printf("%s%06zx  %-30s %s\n", indent, off, hex, in.text);
		off += in.info.length;
	}
}

static void print_pcmap(const struct bt_block *b)
{
	for (uint32_t off = 0; off < b->code_len; off++) {
		gva_t rip;
		uint32_t sp, psp = ~0u;
		gva_t prip = ~0ull;
		if (xlat_pcmap_lookup(b->pcmap, b->pcmap_len, b->guest_start, off, &rip, &sp) !=
		    BT_OK)
			continue;
		if (off > 0 &&
		    xlat_pcmap_lookup(b->pcmap, b->pcmap_len, b->guest_start, off - 1, &prip,
				      &psp) == BT_OK &&
		    prip == rip && psp == sp)
			continue;
		printf("  host %06x -> guest +%-4" PRIu64 " spilled", off, rip - b->guest_start);
		if (!sp)
			printf(" -");
		for (int r = 0; r < 16; r++)
			if (sp & (1u << r))
				printf(" %s", ZydisRegisterGetString(
						  (ZydisRegister)(ZYDIS_REGISTER_RAX + r)));
		if (sp & (1u << 16))
			printf(" flags");
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	/* -e: XLAT_OPT_EXACT_FAULTS, the option btvm and pretrans translate with */
	bool exact = argc == 3 && strcmp(argv[1], "-e") == 0;
	if (argc != 2 + exact) {
		fprintf(stderr, "usage: xlat_golden [-e] FILE.in\n");
		return 2;
	}
	argv += exact;
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	struct golden *g = calloc(1, sizeof(*g));
	if (!g || parse(f, g) != 0) {
		fprintf(stderr, "xlat_golden: %s: malformed (want `start 0x..` and `bytes ..`)\n",
			argv[1]);
		return 2;
	}
	fclose(f);
	struct xlat_ctx *ctx;
	const struct xlat_options o = {.flags = exact ? XLAT_OPT_EXACT_FAULTS : 0};
	if (xlat_create(&o, &ctx) != BT_OK)
		return 2;
	struct xlat_source src = {.read = golden_read, .opaque = g};
	gva_t va = g->start;
	while (va < g->start + g->n) {
		struct bt_block b;
		if (xlat_translate(ctx, &src, va, &b) != BT_OK)
			return 2;
		printf("== block 0x%" PRIx64 "\n", va);
		if (b.refusal != XLAT_OK) {
			printf("refused: %s at 0x%" PRIx64 "\n\n", xlat_refusal_str(b.refusal),
			       b.refusal_addr);
			break;
		}
		printf("guest: %u bytes, %u insns, hash %016" PRIx64 ", flags %#x\n", b.guest_len,
		       b.n_insns, b.guest_hash, b.flags);
		print_insns(g->bytes + (va - g->start), b.guest_len, va, "  ");
		printf("host: %u bytes (expansion %.2f)\n", b.code_len,
		       (double)b.code_len / b.guest_len);
		print_insns(b.code, b.code_len, 0, "  ");
		printf("exits:\n");
		for (uint32_t i = 0; i < b.n_exits; i++) {
			const struct bt_exit *x = &b.exits[i];
			printf("  %u %-9s target 0x%" PRIx64 " stub %06x patch ", i,
			       xlat_exit_kind_str((enum xlat_exit_kind)x->kind), x->target,
			       x->stub_off);
			if (x->patch_off == ~0u)
				printf("-\n");
			else
				printf("%06x\n", x->patch_off);
		}
		printf("pcmap: %u bytes\n", b.pcmap_len);
		print_pcmap(&b);
		printf("\n");
		va += b.guest_len;
	}
	xlat_destroy(ctx);
	free(g);
	return 0;
}
