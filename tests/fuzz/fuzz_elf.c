/*
 * libFuzzer harness for the ELF image loader (pretrans/elfimg.c): any byte
 * string is either refused with a status or loads into an image whose every
 * table can be walked and every code byte read without touching memory
 * outside the input (ASan checks that).
 */
#include "pretrans/base/log.h"
#include "pretrans/elfimg.h"

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
		volatile size_t sink = 0;
		for (size_t i = 0; i < img->nsecs; i++)
			sink += strlen(img->secs[i].name);
		for (size_t i = 0; i < img->nsyms; i++)
			sink += strlen(img->syms[i].name) + img->syms[i].size;
		struct xlat_source src;
		elfimg_source(img, &src);
		uint8_t buf[64];
		for (size_t i = 0; i < img->ncode; i++) {
			const struct elfimg_code *c = &img->code[i];
			sink += src.read(src.opaque, c->start, buf, sizeof(buf));
			if (c->end > c->start)
				sink += src.read(src.opaque, c->end - 1, buf, sizeof(buf));
			sink += c->bytes[0] + c->bytes[c->end - c->start - 1];
		}
		for (size_t i = 0; i < img->nsecs; i++) {
			uint64_t v;
			if (elfimg_read(img, img->secs[i].addr, &v, sizeof(v)) == BT_OK)
				sink += v;
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
