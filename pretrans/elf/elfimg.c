/*
 * ELF image loader (see elfimg.h).  Owns the file mapping, the libelf handle
 * and the section/segment/symbol tables copied out of it.
 *
 * Invariants once elfimg_open() returned BT_OK:
 *  1. every section that is not SHT_NOBITS lies inside the file
 *     (offset + size <= file size, without overflow); so does every segment's
 *     file part, every note, every symbol and string table we read;
 *  2. every name pointer points into a NUL-terminated string inside the map;
 *  3. img->code is sorted by start and its ranges do not overlap, so
 *     elfimg_code_at() is a binary search (ET_EXEC/ET_DYN only);
 *  4. nothing is modified after open: concurrent readers need no lock.
 * Checks are done by hand on the raw header before libelf sees the file, so
 * that each problem gets its own message.
 */
#include "pretrans/elf/elfimg.h"

#include "pretrans/base/assert.h"
#include "pretrans/base/log.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static enum bt_status bad(const char *path, enum bt_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum bt_status bad(const char *path, enum bt_status s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bt_err(LOG_ELF, "%s: %s", path, msg);
	return s;
}

/* [off, off+len) inside a file of size sz, without overflow. */
static bool in_file(uint64_t off, uint64_t len, size_t sz)
{
	return off <= sz && len <= sz - off;
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386:
		return "i386";
	case EM_ARM:
		return "ARM";
	case EM_AARCH64:
		return "AArch64";
	case EM_RISCV:
		return "RISC-V";
	case EM_PPC64:
		return "PowerPC64";
	case EM_S390:
		return "s390";
	case EM_MIPS:
		return "MIPS";
	default:
		return "unknown";
	}
}

/* Raw header checks: everything libelf would otherwise trust. */
static enum bt_status check_header(const char *path, const uint8_t *p, size_t sz)
{
	/* A bzImage (/boot/vmlinuz-*: the boot sector's 0xaa55 at 0x1fe and the
	 * setup header's "HdrS" at 0x202) is what QEMU users pass first. */
	if (sz >= 0x206 && p[0x1fe] == 0x55 && p[0x1ff] == 0xaa &&
	    memcmp(p + 0x202, "HdrS", 4) == 0)
		return bad(path, BT_ERR_UNSUPPORTED,
			   "a compressed bzImage, not an ELF file: pass the matching vmlinux "
			   "instead (/usr/lib/debug/boot/vmlinux-VERSION from "
			   "linux-image-VERSION-dbg)");
	if (sz < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0)
		return bad(path, BT_ERR_FORMAT, "not an ELF file (no \\177ELF magic)");
	if (p[EI_CLASS] == ELFCLASS32)
		return bad(path, BT_ERR_UNSUPPORTED,
			   "32-bit ELF (ELFCLASS32): need a 64-bit x86-64 ELF");
	if (p[EI_CLASS] != ELFCLASS64)
		return bad(path, BT_ERR_FORMAT, "bad ELF class %u", p[EI_CLASS]);
	if (p[EI_DATA] != ELFDATA2LSB)
		return bad(path, BT_ERR_UNSUPPORTED, "not a little-endian ELF (EI_DATA %u)",
			   p[EI_DATA]);
	if (sz < sizeof(Elf64_Ehdr))
		return bad(path, BT_ERR_FORMAT,
			   "truncated ELF: %zu bytes, the ELF header needs %zu", sz,
			   sizeof(Elf64_Ehdr));
	Elf64_Ehdr eh;
	memcpy(&eh, p, sizeof(eh));
	if (eh.e_machine != EM_X86_64)
		return bad(path, BT_ERR_UNSUPPORTED, "ELF for machine %u (%s), need x86-64 (%u)",
			   eh.e_machine, machine_name(eh.e_machine), EM_X86_64);
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN && eh.e_type != ET_REL)
		return bad(path, BT_ERR_UNSUPPORTED,
			   "ELF type %u is not an executable, shared object or relocatable file",
			   eh.e_type);
	if (eh.e_ehsize != sizeof(Elf64_Ehdr))
		return bad(path, BT_ERR_FORMAT, "corrupt ELF header: e_ehsize %u, expected %zu",
			   eh.e_ehsize, sizeof(Elf64_Ehdr));
	if (eh.e_shoff) {
		if (eh.e_shentsize != sizeof(Elf64_Shdr))
			return bad(path, BT_ERR_FORMAT,
				   "corrupt section header table: entry size %u, expected %zu",
				   eh.e_shentsize, sizeof(Elf64_Shdr));
		uint64_t n = eh.e_shnum;
		if (n == 0) { /* extended numbering: count in section 0's sh_size */
			if (!in_file(eh.e_shoff, sizeof(Elf64_Shdr), sz))
				return bad(path, BT_ERR_FORMAT,
					   "truncated ELF: section header table at offset %#llx "
					   "lies past the end of the %zu-byte file",
					   (unsigned long long)eh.e_shoff, sz);
			Elf64_Shdr s0;
			memcpy(&s0, p + eh.e_shoff, sizeof(s0));
			n = s0.sh_size;
		}
		if (n > sz / sizeof(Elf64_Shdr) || !in_file(eh.e_shoff, n * sizeof(Elf64_Shdr), sz))
			return bad(path, BT_ERR_FORMAT,
				   "truncated ELF: section header table (%llu entries at offset "
				   "%#llx) ends past the end of the %zu-byte file",
				   (unsigned long long)n, (unsigned long long)eh.e_shoff, sz);
	}
	if (eh.e_phoff && eh.e_phnum) {
		if (eh.e_phentsize != sizeof(Elf64_Phdr))
			return bad(path, BT_ERR_FORMAT,
				   "corrupt program header table: entry size %u, expected %zu",
				   eh.e_phentsize, sizeof(Elf64_Phdr));
		if (eh.e_phnum == PN_XNUM)
			return bad(path, BT_ERR_UNSUPPORTED, "extended program header numbering");
		if (!in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), sz))
			return bad(path, BT_ERR_FORMAT,
				   "truncated ELF: program header table (%u entries at offset "
				   "%#llx) ends past the end of the %zu-byte file",
				   eh.e_phnum, (unsigned long long)eh.e_phoff, sz);
	}
	return BT_OK;
}

/* A NUL-terminated string at offset off of string-table section strtab. */
static const char *str_at(const struct elfimg *img, size_t strtab, uint64_t off)
{
	if (strtab >= img->nsecs)
		return NULL;
	const struct elfimg_section *s = &img->secs[strtab];
	if (s->type != SHT_STRTAB || off >= s->size)
		return NULL;
	const char *base = (const char *)img->map + s->offset;
	if (!memchr(base + off, 0, s->size - off))
		return NULL;
	return base + off;
}

static enum bt_status load_sections(struct elfimg *img)
{
	Elf *elf = img->elf_;
	size_t n, shstrndx;
	if (elf_getshdrnum(elf, &n) != 0)
		return bad(img->path, BT_ERR_FORMAT, "corrupt section header table: %s",
			   elf_errmsg(-1));
	if (n == 0)
		return BT_OK;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return bad(img->path, BT_ERR_FORMAT, "corrupt section name table index: %s",
			   elf_errmsg(-1));
	img->secs = calloc(n, sizeof(*img->secs));
	if (!img->secs)
		return BT_ERR_NOMEM;
	img->nsecs = n;
	for (size_t i = 0; i < n; i++) {
		Elf_Scn *scn = elf_getscn(elf, i);
		GElf_Shdr sh;
		if (!scn || !gelf_getshdr(scn, &sh))
			return bad(img->path, BT_ERR_FORMAT, "cannot read section header %zu: %s",
				   i, elf_errmsg(-1));
		struct elfimg_section *s = &img->secs[i];
		s->index = (uint32_t)i;
		s->type = sh.sh_type;
		s->flags = sh.sh_flags;
		s->addr = sh.sh_addr;
		s->size = sh.sh_size;
		s->offset = sh.sh_offset;
		s->link = sh.sh_link;
		s->info = sh.sh_info;
		s->entsize = sh.sh_entsize;
		if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL &&
		    !in_file(sh.sh_offset, sh.sh_size, img->size))
			return bad(img->path, BT_ERR_FORMAT,
				   "corrupt section %zu: offset %#llx + size %#llx ends past the "
				   "end of the %zu-byte file",
				   i, (unsigned long long)sh.sh_offset,
				   (unsigned long long)sh.sh_size, img->size);
		if ((sh.sh_flags & SHF_ALLOC) && sh.sh_addr + sh.sh_size < sh.sh_addr)
			return bad(img->path, BT_ERR_FORMAT,
				   "corrupt section %zu: address range wraps around", i);
	}
	if (shstrndx >= n || img->secs[shstrndx].type != SHT_STRTAB)
		return bad(img->path, BT_ERR_FORMAT,
			   "corrupt section name table index %zu (of %zu sections)", shstrndx, n);
	for (size_t i = 0; i < n; i++) {
		Elf_Scn *scn = elf_getscn(elf, i);
		GElf_Shdr sh;
		gelf_getshdr(scn, &sh);
		img->secs[i].name = str_at(img, shstrndx, sh.sh_name);
		if (!img->secs[i].name)
			return bad(img->path, BT_ERR_FORMAT, "section %zu has a bad name offset %u",
				   i, sh.sh_name);
	}
	return BT_OK;
}

static enum bt_status load_segments(struct elfimg *img)
{
	size_t n;
	if (elf_getphdrnum(img->elf_, &n) != 0)
		return bad(img->path, BT_ERR_FORMAT, "corrupt program header table: %s",
			   elf_errmsg(-1));
	if (n == 0)
		return BT_OK;
	img->segs = calloc(n, sizeof(*img->segs));
	if (!img->segs)
		return BT_ERR_NOMEM;
	img->nsegs = n;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(img->elf_, (int)i, &ph))
			return bad(img->path, BT_ERR_FORMAT, "cannot read program header %zu: %s",
				   i, elf_errmsg(-1));
		if (!in_file(ph.p_offset, ph.p_filesz, img->size))
			return bad(img->path, BT_ERR_FORMAT,
				   "corrupt segment %zu: offset %#llx + size %#llx ends past the "
				   "end of the %zu-byte file",
				   i, (unsigned long long)ph.p_offset,
				   (unsigned long long)ph.p_filesz, img->size);
		if (ph.p_type == PT_LOAD && ph.p_filesz > ph.p_memsz)
			return bad(img->path, BT_ERR_FORMAT,
				   "corrupt segment %zu: file size %#llx exceeds memory size %#llx",
				   i, (unsigned long long)ph.p_filesz,
				   (unsigned long long)ph.p_memsz);
		img->segs[i] = (struct elfimg_segment){
		    .type = ph.p_type,
		    .flags = ph.p_flags,
		    .offset = ph.p_offset,
		    .filesz = ph.p_filesz,
		    .memsz = ph.p_memsz,
		    .vaddr = ph.p_vaddr,
		    .paddr = ph.p_paddr,
		};
	}
	return BT_OK;
}

static enum bt_status load_symbols(struct elfimg *img)
{
	const struct elfimg_section *tab = NULL;
	for (size_t i = 0; i < img->nsecs; i++)
		if (img->secs[i].type == SHT_SYMTAB)
			tab = &img->secs[i];
	if (!tab)
		for (size_t i = 0; i < img->nsecs; i++)
			if (img->secs[i].type == SHT_DYNSYM)
				tab = &img->secs[i];
	if (!tab)
		return BT_OK;
	if (tab->entsize != sizeof(Elf64_Sym) || tab->size % sizeof(Elf64_Sym))
		return bad(img->path, BT_ERR_FORMAT,
			   "corrupt symbol table %s: entry size %llu, size %llu", tab->name,
			   (unsigned long long)tab->entsize, (unsigned long long)tab->size);
	if (tab->link >= img->nsecs || img->secs[tab->link].type != SHT_STRTAB)
		return bad(img->path, BT_ERR_FORMAT,
			   "corrupt symbol table %s: string table link %u is not a string table",
			   tab->name, tab->link);
	size_t n = tab->size / sizeof(Elf64_Sym);
	img->syms = calloc(n ? n : 1, sizeof(*img->syms));
	if (!img->syms)
		return BT_ERR_NOMEM;
	const uint8_t *p = img->map + tab->offset;
	for (size_t i = 1; i < n; i++) {
		Elf64_Sym st;
		memcpy(&st, p + i * sizeof(st), sizeof(st));
		const char *name = str_at(img, tab->link, st.st_name);
		if (!name)
			return bad(img->path, BT_ERR_FORMAT, "symbol %zu has a bad name offset %u",
				   i, st.st_name);
		if (st.st_shndx != SHN_UNDEF && st.st_shndx < SHN_LORESERVE &&
		    st.st_shndx >= img->nsecs)
			return bad(img->path, BT_ERR_FORMAT,
				   "symbol %zu (%s) refers to section %u of %zu", i, name,
				   st.st_shndx, img->nsecs);
		img->syms[img->nsyms++] = (struct elfimg_symbol){
		    .name = name,
		    .addr = st.st_value,
		    .size = st.st_size,
		    .type = ELF64_ST_TYPE(st.st_info),
		    .bind = ELF64_ST_BIND(st.st_info),
		    .shndx = st.st_shndx,
		};
	}
	return BT_OK;
}

/* Walk notes in [off, off+len) looking for NT_GNU_BUILD_ID; va: where
 * the notes are loaded (0: not loaded, or not known). */
static enum bt_status scan_notes(struct elfimg *img, uint64_t off, uint64_t len, gva_t va)
{
	const uint8_t *p = img->map + off;
	uint64_t pos = 0;
	while (len - pos >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, p + pos, sizeof(nh));
		uint64_t namesz = ((uint64_t)nh.n_namesz + 3) & ~3ull;
		uint64_t descsz = ((uint64_t)nh.n_descsz + 3) & ~3ull;
		pos += sizeof(nh);
		if (namesz > len - pos || descsz > len - pos - namesz)
			return bad(img->path, BT_ERR_FORMAT,
				   "corrupt note at offset %#llx: sizes run past its section",
				   (unsigned long long)(off + pos - sizeof(nh)));
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp(p + pos, "GNU", 4) && nh.n_descsz > 0 &&
		    nh.n_descsz <= sizeof(img->build_id) && !img->build_id_len) {
			memcpy(img->build_id, p + pos + namesz, nh.n_descsz);
			img->build_id_len = nh.n_descsz;
			img->build_id_va = va ? va + pos + namesz : 0;
		}
		pos += namesz + descsz;
	}
	return BT_OK;
}

static int code_cmp(const void *a, const void *b)
{
	const struct elfimg_code *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static enum bt_status load_code(struct elfimg *img)
{
	img->code = calloc(img->nsecs ? img->nsecs : 1, sizeof(*img->code));
	if (!img->code)
		return BT_ERR_NOMEM;
	for (size_t i = 0; i < img->nsecs; i++) {
		const struct elfimg_section *s = &img->secs[i];
		if (s->type != SHT_PROGBITS || !(s->flags & SHF_ALLOC) ||
		    !(s->flags & SHF_EXECINSTR) || s->size == 0)
			continue;
		img->code[img->ncode++] = (struct elfimg_code){
		    .start = s->addr,
		    .end = s->addr + s->size,
		    .bytes = img->map + s->offset,
		    .sec = s,
		};
	}
	if (img->type == ET_REL)
		return BT_OK;
	qsort(img->code, img->ncode, sizeof(*img->code), code_cmp);
	for (size_t i = 1; i < img->ncode; i++)
		if (img->code[i].start < img->code[i - 1].end)
			return bad(img->path, BT_ERR_FORMAT,
				   "executable sections %s and %s overlap",
				   img->code[i - 1].sec->name, img->code[i].sec->name);
	return BT_OK;
}

static enum bt_status load(struct elfimg *img)
{
	BT_TRY(check_header(img->path, img->map, img->size));
	elf_version(EV_CURRENT);
	img->elf_ = elf_memory((char *)img->map, img->size);
	if (!img->elf_ || elf_kind(img->elf_) != ELF_K_ELF)
		return bad(img->path, BT_ERR_FORMAT, "libelf cannot read it: %s", elf_errmsg(-1));
	GElf_Ehdr eh;
	if (!gelf_getehdr(img->elf_, &eh))
		return bad(img->path, BT_ERR_FORMAT, "corrupt ELF header: %s", elf_errmsg(-1));
	img->type = eh.e_type;
	img->entry = eh.e_entry;
	img->phoff = eh.e_phoff;
	BT_TRY(load_sections(img));
	BT_TRY(load_segments(img));
	BT_TRY(load_symbols(img));
	for (size_t i = 0; i < img->nsecs; i++)
		if (img->secs[i].type == SHT_NOTE)
			BT_TRY(scan_notes(img, img->secs[i].offset, img->secs[i].size,
					  img->secs[i].flags & SHF_ALLOC ? img->secs[i].addr : 0));
	for (size_t i = 0; i < img->nsegs && !img->build_id_len; i++)
		if (img->segs[i].type == PT_NOTE)
			BT_TRY(scan_notes(img, img->segs[i].offset, img->segs[i].filesz, 0));
	BT_TRY(load_code(img));
	if (img->ncode == 0 && img->type != ET_REL) /* a module may hold only data */
		return bad(img->path, BT_ERR_FORMAT,
			   "no executable section (SHF_ALLOC|SHF_EXECINSTR with contents)");
	img->entry_va = img->entry;
	for (size_t i = 0; i < img->nsegs && !elfimg_code_at(img, img->entry); i++) {
		const struct elfimg_segment *g = &img->segs[i];
		if (g->type == PT_LOAD && img->entry >= g->paddr &&
		    img->entry - g->paddr < g->memsz)
			img->entry_va = g->vaddr + (img->entry - g->paddr);
	}
	return BT_OK;
}

/* SHA-256 of the file through read(2), so that hashing a large image does
 * not make all of its mapping resident (a debug vmlinux is ~600 MB, its
 * code ~15 MB). */
static enum bt_status hash_fd(const char *path, int fd, uint8_t out[SHA256_LEN])
{
	enum { BUF = 1 << 20 };
	uint8_t *buf = malloc(BUF);
	if (!buf)
		return BT_ERR_NOMEM;
	struct sha256_ctx c;
	sha256_init(&c);
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, BUF, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return bad(path, BT_ERR_IO, "read failed: %s", strerror(errno));
		}
		if (n == 0)
			break;
		sha256_update(&c, buf, (size_t)n);
		off += n;
	}
	free(buf);
	sha256_final(&c, out);
	return BT_OK;
}

enum bt_status elfimg_open_mem(const char *name, const void *buf, size_t size, struct elfimg **out)
{
	struct elfimg *img;
	BT_TRY(elfimg_open_mem_nohash(name, buf, size, &img));
	sha256_buf(img->map, img->size, img->sha256);
	img->hashed = true;
	*out = img;
	return BT_OK;
}

enum bt_status elfimg_open_mem_nohash(const char *name, const void *buf, size_t size,
				      struct elfimg **out)
{
	struct elfimg *img = calloc(1, sizeof(*img));
	if (!img)
		return BT_ERR_NOMEM;
	img->fd_ = -1;
	img->path = strdup(name ? name : "(memory)");
	img->map = buf;
	img->size = size;
	enum bt_status s = img->path ? load(img) : BT_ERR_NOMEM;
	if (s != BT_OK) {
		elfimg_close(img);
		return s;
	}
	*out = img;
	return BT_OK;
}

static enum bt_status open_file(const char *path, bool hash, struct elfimg **out);

enum bt_status elfimg_open(const char *path, struct elfimg **out)
{
	return open_file(path, true, out);
}

enum bt_status elfimg_open_nohash(const char *path, struct elfimg **out)
{
	return open_file(path, false, out);
}

enum bt_status elfimg_hash(struct elfimg *img)
{
	if (img->hashed)
		return BT_OK;
	enum bt_status s = img->fd_ >= 0 ? hash_fd(img->path, img->fd_, img->sha256)
					 : (sha256_buf(img->map, img->size, img->sha256), BT_OK);
	img->hashed = s == BT_OK;
	return s;
}

static enum bt_status open_file(const char *path, bool hash, struct elfimg **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bad(path, BT_ERR_IO, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return bad(path, BT_ERR_IO, "not a regular file");
	}
	if (st.st_size == 0) {
		close(fd);
		return bad(path, BT_ERR_FORMAT, "not an ELF file (empty)");
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		return bad(path, BT_ERR_IO, "cannot map: %s", strerror(errno));
	}
	struct elfimg *img;
	enum bt_status s = elfimg_open_mem_nohash(path, map, (size_t)st.st_size, &img);
	if (s != BT_OK) {
		munmap(map, (size_t)st.st_size);
		close(fd);
		return s;
	}
	img->fd_ = fd;
	if (hash && (s = elfimg_hash(img)) != BT_OK) {
		elfimg_close(img);
		return s;
	}
	*out = img;
	return BT_OK;
}

void elfimg_close(struct elfimg *img)
{
	if (!img)
		return;
	if (img->elf_)
		elf_end(img->elf_);
	if (img->fd_ >= 0) {
		munmap((void *)img->map, img->size);
		close(img->fd_);
	}
	free(img->secs);
	free(img->segs);
	free(img->syms);
	free(img->code);
	free(img->path);
	free(img);
}

const struct elfimg_section *elfimg_section_by_name(const struct elfimg *img, const char *name)
{
	for (size_t i = 0; i < img->nsecs; i++)
		if (img->secs[i].name && !strcmp(img->secs[i].name, name))
			return &img->secs[i];
	return NULL;
}

const struct elfimg_code *elfimg_code_at(const struct elfimg *img, gva_t va)
{
	size_t lo = 0, hi = img->ncode;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct elfimg_code *c = &img->code[mid];
		if (va < c->start)
			hi = mid;
		else if (va >= c->end)
			lo = mid + 1;
		else
			return c;
	}
	return NULL;
}

enum bt_status elfimg_read(const struct elfimg *img, gva_t va, void *buf, size_t len)
{
	for (size_t i = 0; i < img->nsecs; i++) {
		const struct elfimg_section *s = &img->secs[i];
		if (s->type != SHT_PROGBITS || !(s->flags & SHF_ALLOC))
			continue;
		if (va >= s->addr && va - s->addr <= s->size && len <= s->size - (va - s->addr)) {
			memcpy(buf, img->map + s->offset + (va - s->addr), len);
			return BT_OK;
		}
	}
	return BT_ERR_RANGE;
}

const uint8_t *elfimg_section_bytes(const struct elfimg *img, const struct elfimg_section *sec)
{
	if (sec->type == SHT_NOBITS || sec->type == SHT_NULL)
		return NULL;
	return img->map + sec->offset;
}

enum bt_status elfimg_rela_count(const struct elfimg *img, const struct elfimg_section *sec,
				 size_t *n)
{
	if (sec->type != SHT_RELA || sec->entsize != sizeof(Elf64_Rela) ||
	    sec->size % sizeof(Elf64_Rela))
		return bad(img->path, BT_ERR_FORMAT,
			   "corrupt relocation section %s: type %u, entry size %llu, size %llu",
			   sec->name, sec->type, (unsigned long long)sec->entsize,
			   (unsigned long long)sec->size);
	*n = sec->size / sizeof(Elf64_Rela);
	return BT_OK;
}

void elfimg_rela_get(const struct elfimg *img, const struct elfimg_section *sec, size_t k,
		     struct elfimg_rela *out)
{
	Elf64_Rela ra;
	BT_ASSERT(sec->type == SHT_RELA && k < sec->size / sizeof(ra));
	memcpy(&ra, img->map + sec->offset + k * sizeof(ra), sizeof(ra));
	*out = (struct elfimg_rela){
	    .offset = ra.r_offset,
	    .sym = ELF64_R_SYM(ra.r_info),
	    .type = (uint32_t)ELF64_R_TYPE(ra.r_info),
	    .addend = ra.r_addend,
	};
}

void elfimg_build_id_hex(const struct elfimg *img, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < img->build_id_len; i++) {
		out[2 * i] = hx[img->build_id[i] >> 4];
		out[2 * i + 1] = hx[img->build_id[i] & 15];
	}
	out[2 * i] = 0;
}

void *elfimg_libelf(const struct elfimg *img)
{
	return img->elf_;
}
