/*
 * libFuzzer harness for the ELF reader (pretrans/elf/elfimg.c): any byte
 * string is either refused with a status or loads into an image whose every
 * table can be walked, every section's and code range's bytes and every
 * relocation read without touching memory outside the input (ASan checks
 * that); elfimg_check_kernel (the build/boot image rules) runs on it too.
 */
#include "pretrans/base/log.h"
#include "pretrans/elf/elfimg.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	if (!devnull) {
		devnull = fopen("/dev/null", "w");
		bt_log_to(devnull);
	}
	/* a private copy so that reads past the end are caught exactly */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	struct elfimg *img;
	if (elfimg_open_mem("fuzz", copy, size, &img) == BT_OK) {
		volatile size_t sink = elfimg_check_kernel(img) == BT_OK;
		for (size_t i = 0; i < img->nsecs; i++)
			sink += strlen(img->secs[i].name);
		for (size_t i = 0; i < img->nsyms; i++)
			sink += strlen(img->syms[i].name) + img->syms[i].size;
		for (size_t i = 0; i < img->ncode; i++) {
			const struct elfimg_code *c = &img->code[i];
			sink += elfimg_code_at(img, c->start) != NULL;
			sink += c->bytes[0] + c->bytes[c->end - c->start - 1];
		}
		for (size_t i = 0; i < img->nsecs; i++) {
			const struct elfimg_section *sec = &img->secs[i];
			uint64_t v;
			if (elfimg_read(img, sec->addr, &v, sizeof(v)) == BT_OK)
				sink += v;
			const uint8_t *b = elfimg_section_bytes(img, sec);
			if (b && sec->size)
				sink += b[0] + b[sec->size - 1];
			size_t n;
			if (sec->type == SHT_RELA && elfimg_rela_count(img, sec, &n) == BT_OK)
				for (size_t k = 0; k < n; k++) {
					struct elfimg_rela r;
					elfimg_rela_get(img, sec, k, &r);
					sink += r.offset + r.sym + r.type;
				}
		}
		char hex[129];
		elfimg_build_id_hex(img, hex);
		sink += strlen(hex);
		(void)sink;
		elfimg_close(img);
	}
	free(copy);
	return 0;
}
