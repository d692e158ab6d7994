/*
 * ELF image loader: a read-only view of an x86-64 ELF file (a kernel
 * vmlinux, the test guest kernel.elf, or an ET_REL .ko) with its sections,
 * segments, symbols, build-id and SHA-256, and an xlat_source that serves
 * the bytes of its executable sections by virtual address.
 *
 * Every offset and size read from the file is checked against the file size
 * before use; a bad file is BT_ERR_FORMAT (or BT_ERR_UNSUPPORTED for a valid
 * ELF of another class/machine) with one logged line naming the file and the
 * problem.  The image is immutable after elfimg_open() and may be read from
 * many threads at once.
 */
#ifndef BT_PRETRANS_ELFIMG_H
#define BT_PRETRANS_ELFIMG_H

#include "pretrans/base/sha256.h"
#include "pretrans/base/status.h"
#include "pretrans/base/types.h"
#include "pretrans/xlat/xlat.h"

struct elfimg_section {
	const char *name;
	uint32_t index;
	uint32_t type;	/* SHT_* */
	uint64_t flags; /* SHF_* */
	gva_t addr;
	uint64_t size;
	uint64_t offset; /* file offset (meaningless for SHT_NOBITS) */
	uint32_t link;
	uint64_t entsize;
};

struct elfimg_segment {
	uint32_t type, flags;
	uint64_t offset, filesz, memsz;
	gva_t vaddr;
	gpa_t paddr;
};

struct elfimg_symbol {
	const char *name;
	gva_t addr;
	uint64_t size;
	uint8_t type; /* STT_* */
	uint8_t bind; /* STB_* */
	uint16_t shndx;
};

/* An executable, file-backed, allocated section (SHF_ALLOC|SHF_EXECINSTR). */
struct elfimg_code {
	gva_t start, end;
	const uint8_t *bytes;
	const struct elfimg_section *sec;
};

struct elfimg {
	char *path;
	const uint8_t *map;
	size_t size;
	uint16_t type;	/* ET_EXEC, ET_DYN or ET_REL */
	gva_t entry;	/* e_entry as written (a physical address for kernels) */
	gva_t entry_va; /* e_entry, translated through PT_LOAD paddr->vaddr when
			 * e_entry itself is not inside an executable section */

	struct elfimg_section *secs;
	size_t nsecs;
	struct elfimg_segment *segs;
	size_t nsegs;
	struct elfimg_symbol *syms; /* from .symtab, else .dynsym; may be 0 */
	size_t nsyms;
	struct elfimg_code *code; /* sorted by start, non-overlapping (not for ET_REL) */
	size_t ncode;

	uint8_t build_id[64];
	size_t build_id_len; /* 0 when the image has no NT_GNU_BUILD_ID note */
	uint8_t sha256[SHA256_LEN];
	bool hashed; /* sha256 is valid (elfimg_open_nohash leaves it for elfimg_hash) */

	void *elf_; /* libelf handle */
	int fd_;
};

enum bt_status elfimg_open(const char *path, struct elfimg **out);
/* Same checks on a caller-owned buffer (fuzzing, tests); buf must outlive the image. */
enum bt_status elfimg_open_mem(const char *name, const void *buf, size_t size, struct elfimg **out);
void elfimg_close(struct elfimg *img);
/* Like elfimg_open but without hashing the whole file (a 600 MB vmlinux
 * takes a third of a second); elfimg_hash computes sha256 when needed. */
enum bt_status elfimg_open_nohash(const char *path, struct elfimg **out);
enum bt_status elfimg_hash(struct elfimg *img);

/* The section named name, or NULL. */
const struct elfimg_section *elfimg_section_by_name(const struct elfimg *img, const char *name);
/* The executable range holding va, or NULL. */
const struct elfimg_code *elfimg_code_at(const struct elfimg *img, gva_t va);
/* Copy len bytes at va from any allocated PROGBITS section (all or nothing). */
enum bt_status elfimg_read(const struct elfimg *img, gva_t va, void *buf, size_t len);
/* An xlat_source over the executable sections. */
void elfimg_source(const struct elfimg *img, struct xlat_source *src);
/* Build-id as lower-case hex (out holds 129 bytes); "" when there is none. */
void elfimg_build_id_hex(const struct elfimg *img, char *out);

#endif
