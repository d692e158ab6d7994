/*
 * The project's one ELF reader: a read-only view of an x86-64 ELF file (a
 * kernel vmlinux, the test guest kernel.elf, or an ET_REL .ko) with its
 * sections, segments, symbols, relocations, build-id and SHA-256.  Used by
 * pretrans (discovery, build, diff) and by the runtime's boot loader; it
 * depends only on pretrans/base and libelf.
 *
 * Every offset and size read from the file is checked against the file size
 * before use; a bad file is BT_ERR_FORMAT (or BT_ERR_UNSUPPORTED for a valid
 * ELF of another class/machine) with one logged line naming the file and the
 * problem.  The image is immutable after elfimg_open() and may be read from
 * many threads at once.
 */
#ifndef BT_PRETRANS_ELF_ELFIMG_H
#define BT_PRETRANS_ELF_ELFIMG_H

#include "pretrans/base/sha256.h"
#include "pretrans/base/status.h"
#include "pretrans/base/types.h"

struct elfimg_section {
	const char *name;
	uint32_t index;
	uint32_t type;	/* SHT_* */
	uint64_t flags; /* SHF_* */
	gva_t addr;
	uint64_t size;
	uint64_t offset; /* file offset (meaningless for SHT_NOBITS) */
	uint32_t link;
	uint32_t info; /* sh_info: for SHT_RELA, the index of the section patched */
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
	uint64_t phoff; /* e_phoff (the program header table is already parsed
			 * into segs; for loaders with alignment rules) */
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
	gva_t build_id_va;   /* the note's descriptor in the loaded image (where a
			      * running kernel holds its build-id), 0 when the note
			      * is not in an SHF_ALLOC section */
	uint8_t sha256[SHA256_LEN];
	bool hashed; /* sha256 is valid (elfimg_open_nohash leaves it for elfimg_hash) */

	void *elf_; /* libelf handle */
	int fd_;
};

enum bt_status elfimg_open(const char *path, struct elfimg **out);
/* Same checks on a caller-owned buffer (fuzzing, tests); buf must outlive the image. */
enum bt_status elfimg_open_mem(const char *name, const void *buf, size_t size, struct elfimg **out);
/* elfimg_open_mem without hashing the buffer (elfimg_hash does it later). */
enum bt_status elfimg_open_mem_nohash(const char *name, const void *buf, size_t size,
				      struct elfimg **out);
void elfimg_close(struct elfimg *img);
/* Like elfimg_open but without hashing the whole file (a 600 MB vmlinux
 * takes a third of a second); elfimg_hash computes sha256 when needed. */
enum bt_status elfimg_open_nohash(const char *path, struct elfimg **out);
enum bt_status elfimg_hash(struct elfimg *img);

/*
 * The rules a linked image must meet before `pretrans build` translates it
 * or the boot loader loads it (both call this, so both refuse the same
 * files with the same message; docs/pretrans.md lists the rules).  On top
 * of what elfimg_open already guarantees for every segment (its file bytes
 * inside the file, p_filesz <= p_memsz for PT_LOAD) and for every image
 * (some executable section with contents):
 *  - not ET_REL (BT_ERR_UNSUPPORTED: a .ko is not a linked image);
 *  - a non-empty, 8-byte aligned program header table;
 *  - for each PT_LOAD with p_memsz > 0: neither [p_paddr, +p_memsz) nor
 *    [p_vaddr, +p_memsz) wraps past 2^64; at least one such segment;
 *  - no two such segments share a byte of physical or of virtual address
 *    space (zero-sized segments occupy nothing);
 *  - an executable section starts inside an executable (PF_X) one;
 *  - e_entry lies in one of them, looked up by physical address first,
 *    then virtual (as the boot loader converts it), and that segment is
 *    executable; an ET_DYN with e_entry 0 has no entry point and passes.
 * ET_DYN images pass (pretrans translates position-independent code at its
 * link addresses); the boot loader refuses them itself.  Anything else is
 * BT_ERR_FORMAT; either way one logged line names the file and the rule.
 * BT_ERR_NOMEM if a temporary table cannot be allocated.
 */
enum bt_status elfimg_check_kernel(const struct elfimg *img);

/* The section named name, or NULL. */
const struct elfimg_section *elfimg_section_by_name(const struct elfimg *img, const char *name);
/* The executable range holding va, or NULL. */
const struct elfimg_code *elfimg_code_at(const struct elfimg *img, gva_t va);
/* Copy len bytes at va from any allocated PROGBITS section (all or nothing). */
enum bt_status elfimg_read(const struct elfimg *img, gva_t va, void *buf, size_t len);
/* The file bytes of sec (sec->size of them), or NULL for SHT_NOBITS and
 * SHT_NULL.  elfimg_open checked that every other section lies inside the
 * file. */
const uint8_t *elfimg_section_bytes(const struct elfimg *img, const struct elfimg_section *sec);

/* One SHT_RELA entry, decoded. */
struct elfimg_rela {
	uint64_t offset; /* r_offset: in the patched section (ET_REL) */
	uint64_t sym;	 /* ELF64_R_SYM: index in the symbol table, 0 for none */
	uint32_t type;	 /* ELF64_R_TYPE (R_X86_64_*) */
	int64_t addend;
};

/* The number of entries of SHT_RELA section sec; BT_ERR_FORMAT (one logged
 * line) when it is not a well-formed table of Elf64_Rela. */
enum bt_status elfimg_rela_count(const struct elfimg *img, const struct elfimg_section *sec,
				 size_t *n);
/* Entry k (< the count elfimg_rela_count returned) of sec.  The symbol index
 * is not checked: the caller compares it with its symbol table. */
void elfimg_rela_get(const struct elfimg *img, const struct elfimg_section *sec, size_t k,
		     struct elfimg_rela *out);
/* The image's libelf handle (an Elf *) for libraries that read through one
 * (libdw in pretrans/diff); valid until elfimg_close, not to be ended. */
void *elfimg_libelf(const struct elfimg *img);
/* Build-id as lower-case hex (out holds 129 bytes); "" when there is none. */
void elfimg_build_id_hex(const struct elfimg *img, char *out);

#endif
