/*
 * Normalisation of a function's instructions: decode with Zydis, replace
 * every address-valued operand by a reference that survives a relink (see
 * diff.h), then either hash the stream or print it as a listing.
 *
 * Invariants
 *  1. Hash and listing come from the same normalised operands (struct nop),
 *     so two functions with equal hashes print equal listings (barring a
 *     64-bit collision).
 *  2. Nothing address-dependent enters the hash: no raw targets, no
 *     encoded lengths, no widths of relative fields.
 *  3. Function bytes are untrusted: an undecodable byte ends the stream
 *     (the rest is hashed raw and the listing says "(bad)").
 */
#include "pretrans/diff/diff_int.h"

#include "pretrans/asmfmt/asmfmt.h"
#include "pretrans/base/vec.h"
#include "pretrans/xlat/xlat.h"

#include <Zydis/Zydis.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

enum ref_kind { REF_NONE = 0, REF_SELF, REF_SYM, REF_STR, REF_SEC, REF_BLK };

struct nref_ {
	uint8_t kind;
	uint64_t hash;	  /* name / string / section hash */
	int64_t off;	  /* SELF, SYM */
	const char *name; /* SYM: key; SEC: section name */
	const uint8_t *str;
	size_t str_len;
};

/* The allocated section holding va (above 0; for ET_REL by the synthetic
 * layout) and va's offset in it. */
static const struct elfimg_section *alloc_section_at(const struct diff_side *s, gva_t va,
						     uint64_t *off)
{
	const struct elfimg *img = s->img;
	for (size_t i = 0; i < img->nsecs; i++) {
		const struct elfimg_section *sc = &img->secs[i];
		gva_t base =
		    s->rel ? (sc->index < s->nsec_base ? s->sec_base[sc->index] : 0) : sc->addr;
		if ((sc->flags & SHF_ALLOC) && base && va - base < sc->size) {
			*off = va - base;
			return sc;
		}
	}
	return NULL;
}

/* A NUL-terminated printable string of 1..255 bytes at offset off of sc? */
static int string_at(const struct elfimg *img, const struct elfimg_section *sc, uint64_t off,
		     const uint8_t **p, size_t *len)
{
	if (sc->type != SHT_PROGBITS || (sc->flags & SHF_EXECINSTR))
		return 0;
	const uint8_t *b = elfimg_section_bytes(img, sc) + off;
	size_t room = sc->size - off;
	size_t n = 0;
	while (n < room && n < 256 && b[n]) {
		uint8_t c = b[n];
		/* printable ASCII; \001 only first (printk KERN_<LEVEL> prefix) */
		if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r' && !(c == 1 && n == 0)) ||
		    c >= 0x7f)
			return 0;
		n++;
	}
	if (n == 0 || n >= room || n == 256)
		return 0;
	*p = b;
	*len = n;
	return 1;
}

/* table: the operand is indexed (a jump table, an array), never a string. */
static void resolve(const struct diff_side *s, const struct diff_func *f, gva_t va, int percpu,
		    int table, struct nref_ *r)
{
	memset(r, 0, sizeof(*r));
	if (!percpu && va - f->addr < f->size) {
		r->kind = REF_SELF;
		r->off = (int64_t)(va - f->addr);
		return;
	}
	const struct diff_sym *y = diff_sym_at(s, va);
	if (y) {
		r->kind = REF_SYM;
		r->hash = y->hash;
		r->off = (int64_t)(va - y->addr);
		r->name = y->name;
		return;
	}
	if (percpu) {
		r->kind = REF_SEC;
		r->name = ".data..percpu";
		r->hash = diff_strhash(r->name);
		return;
	}
	uint64_t soff = 0;
	const struct elfimg_section *sc = alloc_section_at(s, va, &soff);
	if (sc && !table && string_at(s->img, sc, soff, &r->str, &r->str_len)) {
		r->kind = REF_STR;
		uint64_t h = 0x5354525354525354ull;
		for (size_t i = 0; i < r->str_len; i++)
			h = (h ^ r->str[i]) * 0x100000001b3ull;
		r->hash = h;
		return;
	}
	r->kind = REF_SEC;
	r->name = sc ? sc->name : "?";
	r->hash = diff_strhash(r->name);
}

static int in_image(const struct diff_side *s, uint64_t v)
{
	if (s->rel || v < s->alloc_lo || v >= s->alloc_hi)
		return 0; /* most immediates: one compare; ET_REL: relocations only */
	uint64_t off;
	return alloc_section_at(s, v, &off) != NULL;
}

/* ET_REL: the field at insn_va + field_off is relocated: what it refers to.
 * PC-relative values are taken relative to the next instruction, as the
 * CPU will (the addend absorbs the distance from the field). */
static int reloc_ref(const struct diff_side *s, const struct diff_func *f, gva_t insn_va,
		     gva_t next, uint8_t field_off, int table, struct nref_ *r)
{
	if (!s->rel || !field_off || f->shndx >= s->nsec_base)
		return 0;
	gva_t field = insn_va + field_off;
	const struct diff_reloc *rl = diff_reloc_at(s, f->shndx, field - s->sec_base[f->shndx]);
	if (!rl)
		return 0;
	int pc =
	    rl->type == R_X86_64_PC32 || rl->type == R_X86_64_PLT32 || rl->type == R_X86_64_PC64;
	int64_t adj = rl->addend + (pc ? (int64_t)(next - field) : 0);
	const struct elfimg_symbol *y = rl->sym;
	if (!y || y->shndx == SHN_UNDEF || y->shndx >= SHN_LORESERVE || y->shndx >= s->nsec_base ||
	    !s->sec_base[y->shndx]) {
		/* external (or absolute) symbol: its name and the addend */
		memset(r, 0, sizeof(*r));
		r->kind = REF_SYM;
		r->name = y && y->name[0] ? y->name : "?";
		r->hash = diff_strhash(r->name);
		r->off = adj;
		return 1;
	}
	resolve(s, f, diff_sym_addr(s, y) + (uint64_t)adj, 0, table, r);
	return 1;
}

/* One normalised operand. */
struct nop {
	uint8_t type, scale;
	uint8_t vcpu; /* translated code's %gs: operand: val is a vCPU ABI offset */
	uint16_t size;
	uint16_t reg, base, index, seg;
	int64_t val; /* imm or disp when not a reference */
	uint8_t has_disp;
	struct nref_ ref;
};

struct ninsn {
	ZydisMnemonic mnemonic;
	uint64_t prefixes;
	uint8_t n_ops;
	struct nop op[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];
};

static const uint64_t PREFIX_ATTRS =
    ZYDIS_ATTRIB_HAS_LOCK | ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE |
    ZYDIS_ATTRIB_HAS_BND | ZYDIS_ATTRIB_HAS_XACQUIRE | ZYDIS_ATTRIB_HAS_XRELEASE;

/* Translated code's probe of an absolute address (xe_probe_abs) names its
 * TLB entry (%gs:tlb[index].field, no base or index register) and compares
 * it with the page of the access's last byte: both are functions of the
 * address the probe's `mov A, address` names, which is compared as a
 * reference.  Normalised to entry 0 and page 0, so a function whose data
 * moved to another page still lists the same. */
static void normalise_tlb(struct ninsn *n)
{
	int tlb = 0;
	for (uint8_t i = 0; i < n->n_ops; i++) {
		struct nop *p = &n->op[i];
		uint64_t d = (uint64_t)p->val;
		if (p->type != ZYDIS_OPERAND_TYPE_MEMORY || !p->vcpu || p->base || p->index)
			continue;
		if (d - VCPU_OFF_TLB < VCPU_TLB_ENTRIES * 32u) {
			p->val = (int64_t)(VCPU_OFF_TLB + (d & 31));
			tlb = 1;
		} else if (d - VCPU_OFF_UTLB < VCPU_TLB_ENTRIES * 32u) {
			p->val = (int64_t)(VCPU_OFF_UTLB + (d & 31));
			tlb = 1;
		}
	}
	for (uint8_t i = 0; tlb && i < n->n_ops; i++)
		if (n->op[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			memset(&n->op[i].ref, 0, sizeof(n->op[i].ref));
			n->op[i].val = 0;
		}
}

/* host: the instruction is translated code at block offset ip; its
 * relative operands are block-local (REF_BLK), immediates in the image are
 * still guest addresses, %gs is the vCPU area (not per-CPU data). */
static void normalise(const struct diff_side *s, const struct diff_func *f, gva_t ip,
		      const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops, int host,
		      struct ninsn *n)
{
	n->mnemonic = in->mnemonic;
	n->prefixes = in->attributes & PREFIX_ATTRS;
	n->n_ops = in->operand_count_visible;
	gva_t next = ip + in->length;
	unsigned nimm = 0; /* immediate operands map to in->raw.imm[] in order */
	for (uint8_t i = 0; i < n->n_ops; i++) {
		const ZydisDecodedOperand *o = &ops[i];
		struct nop *p = &n->op[i];
		memset(p, 0, sizeof(*p));
		p->type = (uint8_t)o->type;
		p->size = o->size;
		switch (o->type) {
		case ZYDIS_OPERAND_TYPE_REGISTER:
			p->reg = (uint16_t)o->reg.value;
			break;
		case ZYDIS_OPERAND_TYPE_MEMORY:
			p->base = (uint16_t)o->mem.base;
			p->index = (uint16_t)o->mem.index;
			p->scale = o->mem.scale;
			p->seg = (uint16_t)o->mem.segment;
			p->has_disp = o->mem.disp.has_displacement;
			if (o->mem.type == ZYDIS_MEMOP_TYPE_AGEN)
				p->size = 0; /* lea: the width says nothing */
			if (!host && reloc_ref(s, f, ip, next, in->raw.disp.offset,
					       o->mem.index != ZYDIS_REGISTER_NONE, &p->ref)) {
				/* relocated displacement (ET_REL) */
			} else if (o->mem.base == ZYDIS_REGISTER_RIP && host) {
				p->ref.kind = REF_BLK;
				p->ref.off = (int64_t)(next + (uint64_t)o->mem.disp.value);
			} else if (o->mem.base == ZYDIS_REGISTER_RIP) {
				resolve(s, f, next + (uint64_t)o->mem.disp.value, 0, 0, &p->ref);
			} else if (o->mem.segment == ZYDIS_REGISTER_GS && host) {
				p->val = o->mem.disp.value;
				p->vcpu = 1;
			} else if (o->mem.segment == ZYDIS_REGISTER_GS && s->percpu_end &&
				   o->mem.base == ZYDIS_REGISTER_NONE &&
				   (uint64_t)o->mem.disp.value < s->percpu_end) {
				resolve(s, f, (uint64_t)o->mem.disp.value, 1, 0, &p->ref);
			} else if (o->mem.disp.has_displacement &&
				   in_image(s, (uint64_t)o->mem.disp.value)) {
				resolve(s, f, (uint64_t)o->mem.disp.value, 0,
					o->mem.index != ZYDIS_REGISTER_NONE, &p->ref);
			} else {
				p->val = o->mem.disp.value;
			}
			break;
		case ZYDIS_OPERAND_TYPE_POINTER:
			p->val = ((int64_t)o->ptr.segment << 32) | o->ptr.offset;
			break;
		case ZYDIS_OPERAND_TYPE_IMMEDIATE:
			if (!host && nimm < 2 &&
			    reloc_ref(s, f, ip, next, in->raw.imm[nimm].offset, 0, &p->ref)) {
				if (o->imm.is_relative)
					p->size = 0;
			} else if (o->imm.is_relative && host) {
				p->size = 0;
				p->ref.kind = REF_BLK;
				p->ref.off = (int64_t)(next + o->imm.value.u);
			} else if (o->imm.is_relative) {
				p->size = 0;
				resolve(s, f, next + o->imm.value.u, 0, 0, &p->ref);
			} else if (in_image(s, o->imm.value.u)) {
				resolve(s, f, o->imm.value.u, 0, 0, &p->ref);
			} else {
				p->val = o->imm.value.s;
			}
			nimm++;
			break;
		default:
			break;
		}
	}
	if (host)
		normalise_tlb(n);
}

static uint64_t hash_insn(uint64_t h, const struct ninsn *n)
{
	h = diff_mix(h, ((uint64_t)n->mnemonic << 8) | n->n_ops);
	h = diff_mix(h, n->prefixes);
	for (uint8_t i = 0; i < n->n_ops; i++) {
		const struct nop *p = &n->op[i];
		h = diff_mix(h, ((uint64_t)p->type << 56) | ((uint64_t)p->scale << 48) |
				    ((uint64_t)p->size << 32) | ((uint64_t)p->reg << 16) |
				    p->has_disp);
		h = diff_mix(h, ((uint64_t)p->base << 32) | ((uint64_t)p->index << 16) | p->seg);
		if (p->ref.kind) {
			h = diff_mix(h, p->ref.kind);
			h = diff_mix(h, p->ref.hash);
			h = diff_mix(h, (uint64_t)p->ref.off);
		} else {
			h = diff_mix(h, (uint64_t)p->val);
		}
	}
	return h;
}

static void init_decoder(ZydisDecoder *d)
{
	ZydisDecoderInit(d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

void diff_norm_hash(const struct diff_side *s, struct diff_func *f)
{
	ZydisDecoder dec;
	init_decoder(&dec);
	uint64_t h = diff_mix(0x6469666600000000ull, f->size);
	uint32_t n = 0;
	uint64_t off = 0;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	struct ninsn ni;
	while (off < f->size) {
		if (!ZYAN_SUCCESS(
			ZydisDecoderDecodeFull(&dec, f->bytes + off, f->size - off, &in, ops))) {
			f->bad_at = (uint32_t)off;
			for (; off < f->size; off++)
				h = diff_mix(h, 0x100u | f->bytes[off]);
			break;
		}
		normalise(s, f, f->addr + off, &in, ops, 0, &ni);
		h = hash_insn(h, &ni);
		off += in.length;
		n++;
	}
	f->norm_hash = h;
	f->n_insns = n;
}

/* ---- listing ---- */

static const char *size_word(uint16_t bits)
{
	switch (bits) {
	case 8:
		return "byte ptr ";
	case 16:
		return "word ptr ";
	case 32:
		return "dword ptr ";
	case 64:
		return "qword ptr ";
	case 80:
		return "tbyte ptr ";
	case 128:
		return "xmmword ptr ";
	case 256:
		return "ymmword ptr ";
	case 512:
		return "zmmword ptr ";
	default:
		return "";
	}
}

/* AT&T's operand-size suffix, for an instruction no register operand
 * sizes (movl $0x0, (%rax)). */
static const char *att_suffix(uint16_t bits)
{
	switch (bits) {
	case 8:
		return "b";
	case 16:
		return "w";
	case 32:
		return "l";
	case 64:
		return "q";
	default:
		return "";
	}
}

static void print_ref(struct diff_buf *b, const struct nref_ *r)
{
	switch (r->kind) {
	case REF_SELF:
		diff_buf_printf(b, "self+0x%llx", (unsigned long long)r->off);
		break;
	case REF_SYM:
		diff_buf_printf(b, "%s+0x%llx", r->name, (unsigned long long)r->off);
		break;
	case REF_STR: {
		diff_buf_printf(b, "str:\"");
		for (size_t i = 0; i < r->str_len && i < 48; i++) {
			uint8_t c = r->str[i];
			if (c == '\n')
				diff_buf_printf(b, "\\n");
			else if (c == '"' || c == '\\')
				diff_buf_printf(b, "\\%c", c);
			else if (c < 0x20 || c >= 0x7f)
				diff_buf_printf(b, "\\x%02x", c);
			else
				diff_buf_printf(b, "%c", c);
		}
		diff_buf_printf(b, "%s\"", r->str_len > 48 ? "..." : "");
		break;
	}
	case REF_SEC:
		diff_buf_printf(b, "%s+?", r->name);
		break;
	case REF_BLK:
		diff_buf_printf(b, "blk+0x%llx", (unsigned long long)r->off);
		break;
	default:
		break;
	}
}

static void print_insn(struct diff_buf *b, const struct ninsn *n)
{
	if (n->prefixes & ZYDIS_ATTRIB_HAS_LOCK)
		diff_buf_printf(b, "lock ");
	if (n->prefixes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
		diff_buf_printf(b, "rep ");
	if (n->prefixes & ZYDIS_ATTRIB_HAS_REPNE)
		diff_buf_printf(b, "repne ");
	const char *m = ZydisMnemonicGetString(n->mnemonic);
	diff_buf_printf(b, "%s", m ? m : "?");
	for (uint8_t i = 0; i < n->n_ops; i++) {
		const struct nop *p = &n->op[i];
		diff_buf_printf(b, i ? ", " : " ");
		switch (p->type) {
		case ZYDIS_OPERAND_TYPE_REGISTER:
			diff_buf_printf(b, "%s", ZydisRegisterGetString((ZydisRegister)p->reg));
			break;
		case ZYDIS_OPERAND_TYPE_MEMORY: {
			diff_buf_printf(b, "%s[", size_word(p->size));
			int any = 0;
			if (p->seg == ZYDIS_REGISTER_GS || p->seg == ZYDIS_REGISTER_FS)
				diff_buf_printf(
				    b, "%s:", ZydisRegisterGetString((ZydisRegister)p->seg));
			if (p->base && p->base != ZYDIS_REGISTER_RIP) {
				diff_buf_printf(b, "%s",
						ZydisRegisterGetString((ZydisRegister)p->base));
				any = 1;
			}
			if (p->index) {
				diff_buf_printf(b, "%s%s*%u", any ? "+" : "",
						ZydisRegisterGetString((ZydisRegister)p->index),
						p->scale);
				any = 1;
			}
			char field[96];
			if (p->ref.kind) {
				diff_buf_printf(b, "%s", any ? "+" : "");
				print_ref(b, &p->ref);
			} else if (p->vcpu && p->val > 0 &&
				   asmfmt_vcpu_field((uint64_t)p->val, field, sizeof(field))) {
				diff_buf_printf(b, "%s%s", any ? "+" : "", field);
			} else if (p->val || !any) {
				if (p->val < 0 && any)
					diff_buf_printf(b, "-0x%llx",
							(unsigned long long)-(uint64_t)p->val);
				else
					diff_buf_printf(b, "%s0x%llx", any ? "+" : "",
							(unsigned long long)p->val);
			}
			diff_buf_printf(b, "]");
			break;
		}
		case ZYDIS_OPERAND_TYPE_IMMEDIATE:
			if (p->ref.kind)
				print_ref(b, &p->ref);
			else if (p->val < 0 && p->val > -0x10000)
				diff_buf_printf(b, "-0x%llx",
						(unsigned long long)-(uint64_t)p->val);
			else
				diff_buf_printf(b, "0x%llx", (unsigned long long)p->val);
			break;
		case ZYDIS_OPERAND_TYPE_POINTER:
			diff_buf_printf(b, "far 0x%llx", (unsigned long long)p->val);
			break;
		default:
			diff_buf_printf(b, "?");
		}
	}
}

static void print_num(struct diff_buf *b, int64_t v, bool sign)
{
	if (v < 0 && (sign || v > -0x10000))
		diff_buf_printf(b, "-0x%llx", (unsigned long long)-(uint64_t)v);
	else
		diff_buf_printf(b, "0x%llx", (unsigned long long)v);
}

/* The same normalised instruction in AT&T syntax (-M att): operands in
 * reverse order, %registers, $immediates, disp(base,index,scale), `*` on
 * indirect branch targets, a size suffix when no register gives it. */
static void print_insn_att(struct diff_buf *b, const struct ninsn *n)
{
	if (n->prefixes & ZYDIS_ATTRIB_HAS_LOCK)
		diff_buf_printf(b, "lock ");
	if (n->prefixes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
		diff_buf_printf(b, "rep ");
	if (n->prefixes & ZYDIS_ATTRIB_HAS_REPNE)
		diff_buf_printf(b, "repne ");
	const char *m = ZydisMnemonicGetString(n->mnemonic);
	bool branch = n->mnemonic == ZYDIS_MNEMONIC_CALL || n->mnemonic == ZYDIS_MNEMONIC_JMP;
	uint16_t msize = 0;
	bool has_reg = false;
	for (uint8_t i = 0; i < n->n_ops; i++) {
		if (n->op[i].type == ZYDIS_OPERAND_TYPE_REGISTER)
			has_reg = true;
		if (n->op[i].type == ZYDIS_OPERAND_TYPE_MEMORY && n->op[i].size)
			msize = n->op[i].size;
	}
	diff_buf_printf(b, "%s%s", m ? m : "?", !has_reg && !branch ? att_suffix(msize) : "");
	for (int i = n->n_ops - 1, first = 1; i >= 0; i--, first = 0) {
		const struct nop *p = &n->op[i];
		diff_buf_printf(b, first ? " " : ", ");
		switch (p->type) {
		case ZYDIS_OPERAND_TYPE_REGISTER:
			diff_buf_printf(b, "%s%%%s", branch ? "*" : "",
					ZydisRegisterGetString((ZydisRegister)p->reg));
			break;
		case ZYDIS_OPERAND_TYPE_MEMORY:
			if (branch)
				diff_buf_printf(b, "*");
			if (p->seg == ZYDIS_REGISTER_GS || p->seg == ZYDIS_REGISTER_FS)
				diff_buf_printf(
				    b, "%%%s:", ZydisRegisterGetString((ZydisRegister)p->seg));
			char field[96];
			if (p->ref.kind)
				print_ref(b, &p->ref);
			else if (p->vcpu && p->val > 0 &&
				 asmfmt_vcpu_field((uint64_t)p->val, field, sizeof(field)))
				diff_buf_printf(b, "%s", field);
			else if (p->val || (!p->base && !p->index) || p->base == ZYDIS_REGISTER_RIP)
				print_num(b, p->val, p->base || p->index);
			if ((p->base && p->base != ZYDIS_REGISTER_RIP) || p->index) {
				diff_buf_printf(b, "(");
				if (p->base && p->base != ZYDIS_REGISTER_RIP)
					diff_buf_printf(
					    b, "%%%s",
					    ZydisRegisterGetString((ZydisRegister)p->base));
				if (p->index)
					diff_buf_printf(
					    b, ",%%%s,%u",
					    ZydisRegisterGetString((ZydisRegister)p->index),
					    p->scale);
				diff_buf_printf(b, ")");
			}
			break;
		case ZYDIS_OPERAND_TYPE_IMMEDIATE:
			if (p->ref.kind && p->size == 0) { /* a relative branch target */
				print_ref(b, &p->ref);
				break;
			}
			diff_buf_printf(b, "$");
			if (p->ref.kind)
				print_ref(b, &p->ref);
			else
				print_num(b, p->val, false);
			break;
		case ZYDIS_OPERAND_TYPE_POINTER:
			diff_buf_printf(b, "$0x%llx", (unsigned long long)p->val);
			break;
		default:
			diff_buf_printf(b, "?");
		}
	}
}

/* Lines built in one text buffer (NUL-separated), then handed out as one
 * heap block: the pointer array followed by the text. */
struct lines {
	struct diff_buf text;
	size_t *starts, n, cap;
	uint32_t *offs; /* with_offs: each line's offset in the function */
	size_t offs_cap;
	int with_offs;
	int failed;
};

static void line_begin(struct lines *l)
{
	if (!BT_VEC_RESERVE(l->starts, l->cap, l->n + 1, 64)) {
		l->failed = 1;
		return;
	}
	if (l->with_offs && !BT_VEC_RESERVE(l->offs, l->offs_cap, l->n + 1, 64)) {
		l->failed = 1;
		return;
	}
	l->starts[l->n++] = l->text.len;
}

static void line_end(struct lines *l)
{
	if (diff_buf_printf(&l->text, "%c", 0) != BT_OK)
		l->failed = 1;
}

static enum bt_status lines_finish(struct lines *l, char ***lines, size_t *nlines)
{
	enum bt_status st = BT_ERR_NOMEM;
	if (l->failed || (l->n && !l->text.p))
		goto err_free;
	char **out = malloc(l->n * sizeof(char *) + l->text.len + 1);
	if (!out)
		goto err_free;
	char *t = (char *)(out + l->n);
	if (l->text.len)
		memcpy(t, l->text.p, l->text.len);
	for (size_t i = 0; i < l->n; i++)
		out[i] = t + l->starts[i];
	*lines = out;
	*nlines = l->n;
	st = BT_OK;
err_free:
	free(l->starts);
	diff_buf_fini(&l->text);
	if (st != BT_OK) {
		free(l->offs);
		l->offs = NULL;
	}
	return st;
}

/* Append the normalised instructions of code[0, len) at address base. */
static void list_code(struct lines *l, const struct diff_side *s, const struct diff_func *f,
		      const uint8_t *code, size_t len, gva_t base, int host, const char *indent)
{
	ZydisDecoder dec;
	init_decoder(&dec);
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	struct ninsn ni;
	for (size_t off = 0; off < len && !l->failed;) {
		line_begin(l);
		if (l->with_offs && !l->failed)
			l->offs[l->n - 1] = (uint32_t)off;
		diff_buf_printf(&l->text, "%s", indent);
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code + off, len - off, &in, ops))) {
			diff_buf_printf(&l->text, "(bad) %zu bytes", len - off);
			line_end(l);
			break;
		}
		normalise(s, f, base + off, &in, ops, host, &ni);
		if (s->att)
			print_insn_att(&l->text, &ni);
		else
			print_insn(&l->text, &ni);
		line_end(l);
		off += in.length;
	}
}

enum bt_status diff_func_listing(const struct diff_side *s, const struct diff_func *f,
				 char ***lines, size_t *nlines)
{
	struct lines l = {0};
	list_code(&l, s, f, f->bytes, f->size, f->addr, 0, "");
	return lines_finish(&l, lines, nlines);
}

enum bt_status diff_func_listing_offs(const struct diff_side *s, const struct diff_func *f,
				      char ***lines, uint32_t **offs, size_t *nlines)
{
	struct lines l = {.with_offs = 1};
	list_code(&l, s, f, f->bytes, f->size, f->addr, 0, "");
	enum bt_status st = lines_finish(&l, lines, nlines);
	*offs = st == BT_OK ? l.offs : NULL;
	return st;
}

static size_t read_func(void *opaque, gva_t va, uint8_t *buf, size_t len)
{
	const struct diff_func *f = opaque;
	if (va - f->addr >= f->size)
		return 0;
	size_t n = BT_MIN(len, (size_t)(f->size - (va - f->addr)));
	memcpy(buf, f->bytes + (va - f->addr), n);
	return n;
}

enum bt_status diff_func_xlat_listing(const struct diff_side *s, const struct diff_func *f,
				      struct xlat_ctx *ctx, char ***lines, size_t *nlines)
{
	/* Blocks are cut at the function's end: the source serves only its
	 * bytes, so both sides translate exactly the code being compared. */
	struct xlat_source src = {.read = read_func, .opaque = (void *)f};
	struct lines l = {0};
	ZydisDecoder dec;
	init_decoder(&dec);
	for (gva_t va = f->addr; va < f->addr + f->size && !l.failed;) {
		struct bt_block b;
		enum bt_status st = xlat_translate(ctx, &src, va, &b);
		if (st != BT_OK) {
			free(l.starts);
			diff_buf_fini(&l.text);
			return st;
		}
		struct nref_ at = {.kind = REF_SELF, .off = (int64_t)(va - f->addr)};
		line_begin(&l);
		diff_buf_printf(&l.text, "block ");
		print_ref(&l.text, &at);
		if (b.refusal != XLAT_OK) {
			diff_buf_printf(&l.text, ": refused (%s)", xlat_refusal_str(b.refusal));
			line_end(&l);
			/* continue at the next guest instruction */
			ZydisDecodedInstruction in;
			uint64_t off = va - f->addr;
			va += ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, f->bytes + off,
									 f->size - off, &in))
				  ? in.length
				  : 1;
			continue;
		}
		diff_buf_printf(&l.text, ": %u guest insns -> %u bytes", b.n_insns, b.code_len);
		line_end(&l);
		list_code(&l, s, f, b.code, b.code_len, 0, 1, "  ");
		for (uint32_t i = 0; i < b.n_exits && i < XLAT_MAX_EXITS; i++) {
			struct nref_ t;
			resolve(s, f, b.exits[i].target, 0, 0, &t);
			line_begin(&l);
			diff_buf_printf(&l.text, "  exit %s -> ",
					xlat_exit_kind_str(b.exits[i].kind));
			if (b.exits[i].kind == XLAT_EXIT_INDIRECT ||
			    b.exits[i].kind == XLAT_EXIT_RET || b.exits[i].kind == XLAT_EXIT_IRQ)
				diff_buf_printf(&l.text, "(dynamic)");
			else
				print_ref(&l.text, &t);
			line_end(&l);
		}
		if (!b.guest_len)
			break;
		va = b.guest_start + b.guest_len;
	}
	return lines_finish(&l, lines, nlines);
}
