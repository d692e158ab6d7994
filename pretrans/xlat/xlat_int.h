/*
 * Internals shared by the translator core's files (not part of the API).
 *
 *   xlat.c        context, block loop (where a block ends), liveness, output
 *   xlat_emit.c   the emitter: two code sections, labels, fixups, pc map,
 *                 Zydis encoder helpers, the soft-MMU probe and flag saving
 *   xlat_mangle.c one function per instruction class (what it becomes)
 */
#ifndef BT_XLAT_XLAT_INT_H
#define BT_XLAT_XLAT_INT_H

#include "pretrans/xlat/xlat.h"
#include "pretrans/xlat/xlat_facts.h"
#include "pretrans/xlat/xlat_tmpl.h"

#include <Zydis/Zydis.h>
#include <stdbool.h>

#define XLAT_DEFAULT_MAX_INSNS 32
#define XLAT_HARD_MAX_INSNS    64
/* Upper bound of the host bytes one guest instruction can become (checked
 * per instruction: the block is cut before the buffer could overflow). */
#define XLAT_MAX_EXPANSION 640
#define XLAT_SEC_CAP	   (XLAT_HARD_MAX_INSNS * XLAT_MAX_EXPANSION)
#define XLAT_MAX_LABELS	   512
#define XLAT_MAX_FIXUPS	   512
#define XLAT_MAX_PCENT	   1024
#define XLAT_MAX_SLOW	   32 /* distinct shared slow paths per block */

#define XLAT_FLAGS_ARITH 0x8d5u /* CF PF AF ZF SF OF */
#define XLAT_SPILL_FLAGS (1u << 16)

enum xe_section { XE_MAIN = 0, XE_COLD = 1 };

struct xe_pcent {
	uint32_t off;  /* offset in its section */
	uint32_t goff; /* guest offset of the instruction being executed */
	uint32_t mask; /* spilled registers (bit r) and flags (XLAT_SPILL_FLAGS) */
};

struct xe_label {
	int8_t sec; /* -1 = not placed yet */
	uint32_t off;
};

struct xe_fixup {
	uint8_t sec;
	uint32_t pos; /* offset of a rel32 in its section */
	int label;
};

/* One decoded guest instruction plus what liveness computed for it. */
struct xlat_insn {
	ZydisDecodedInstruction d;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	gva_t va;
	uint32_t goff;	     /* offset from the block start */
	uint8_t bytes[16];   /* the guest bytes */
	uint32_t regs_used;  /* every GPR the instruction names (any width) */
	uint32_t regs_read;  /* GPRs it reads (partial writes count as reads) */
	uint32_t regs_kill;  /* GPRs it fully overwrites (32/64-bit writes) */
	uint32_t flags_read; /* arithmetic flags read */
	uint32_t flags_kill; /* arithmetic flags surely overwritten */
	uint32_t flags_may;  /* arithmetic flags possibly written (incl. undefined) */
	uint32_t live_out;   /* GPRs live after it */
	bool flags_live_out; /* some arithmetic flag live after it */
	bool flags_live_in;
	struct xlat_facts facts; /* xlat_insn_facts() */
};

/*
 * Template recording (xlat_tmpl.c, docs/kmod.md): how a value the host code
 * holds derives from the block's guest start and its guest bytes.  Value =
 * (XV_PC ? block start : 0) + (XV_FIELD ? the guest field goff/gw, signed or
 * not : 0) + an addend, truncated to 32/16 bits with XV_T32/XV_T16.
 * flags == 0: a constant (nothing to record).
 */
enum {
	XV_PC = 1u << 0,
	XV_FIELD = 1u << 1,
	XV_SIGNED = 1u << 2,
	XV_T32 = 1u << 3,
	XV_T16 = 1u << 4,
	XV_SET = 1u << 5, /* exit_val: given by the mangler */
};
struct xe_val {
	uint8_t flags;
	uint8_t gw;    /* guest field width in bytes */
	uint16_t goff; /* guest field offset from the block start */
};
struct xe;
/* The recorder (xlat_tmpl.c): records with their section-relative place. */
struct xe_rec {
	uint8_t sec;
	uint32_t pos;
	struct xlat_reloc r;
};
struct xe_tm {
	ZydisDecoder dec;     /* reads back the host instruction just emitted */
	const uint8_t *guest; /* the block's guest bytes */
	struct xe_rec rec[XLAT_TMPL_MAX_RELOCS];
	uint32_t n;
	bool bad; /* something was not describable: no template */
};
void xe_tm_begin(struct xe_tm *tm, const uint8_t *guest, bool bad);
/* After xe_finish: records with final offsets into out (cap entries). */
bool xe_tm_end(const struct xe *e, const struct xe_tm *tm, struct xlat_reloc *out, uint32_t cap,
	       uint32_t *n);

/* The emitter: one block's output under construction. */
struct xe {
	uint8_t *sec[2];
	uint32_t len[2];
	int cur;
	struct xe_label labels[XLAT_MAX_LABELS];
	int n_labels;
	struct xe_fixup fixups[XLAT_MAX_FIXUPS];
	int n_fixups;
	struct xe_pcent pc[2][XLAT_MAX_PCENT];
	int n_pc[2];
	uint32_t goff; /* current guest offset for the pc map */
	uint32_t mask; /* current spill state for the pc map */
	bool failed;   /* the encoder rejected something: refuse the block */
	bool overflow; /* an internal table overflowed: refuse the block */
	/* exits */
	struct bt_exit exits[XLAT_MAX_EXITS];
	int exit_patch_label[XLAT_MAX_EXITS]; /* label at the patchable rel32, -1 */
	int exit_stub_label[XLAT_MAX_EXITS];
	uint32_t n_exits;
	gva_t block_start;
	/* %gs offsets of the software TLB and the IBL table this block probes:
	 * the kernel's (tlb, ibl) or, with XLAT_OPT_USER, the user's. */
	int32_t off_tlb, off_ibl;
	bool step;	   /* XLAT_OPT_STEP: every exit leaves, no IBL or probe */
	bool count_probes; /* XLAT_OPT_COUNT_PROBES: probes add 1 to vcpu.probes */
	/* Deferred restores: scratch registers whose guest value is still in
	 * vcpu.spill[] (host register holds garbage) and whether the guest
	 * flags are still in spill_flags, carried from one instruction to the
	 * next until something needs the real value (xlat_mangle). */
	uint32_t pend_regs;
	bool pend_flags;
	/* template recording: NULL unless xlat_translate_tmpl() runs */
	struct xe_tm *tm;
	struct xe_val exit_val[XLAT_MAX_EXITS]; /* how each exit's target derives */
	/* measurement: bytes emitted per enum xlat_code_cat; e->cat is the
	 * category of what is being emitted (xe_cat) */
	int cat;
	uint32_t cat_bytes[XLAT_NCATS];
	/* shared soft-MMU slow paths of this block (xe_probe): mem_info value
	 * and label, emitted once each by xe_emit_stubs */
	uint32_t slow_info[XLAT_MAX_SLOW];
	int slow_label[XLAT_MAX_SLOW];
	int n_slow;
	/* the last two-register probe's address and TLB index register, while
	 * that register still holds the index (xe_probe2 sets it, xlat_mangle
	 * clears it at anything that could change either) */
	bool idx_valid;
	ZydisRegister idx_reg, idx_base, idx_index;
	uint8_t idx_scale;
	int64_t idx_disp;
	/* the encoder's memo (xe_req), owned by the xlat_ctx, kept by
	 * xe_reset; NULL: every request goes to Zydis' encoder */
	struct xe_enc_memo *enc;
	uint64_t enc_hits, enc_misses;
};

/* The encoder's memo (xe_req): XE_ENC_SLOTS requests and what Zydis
 * encoded them as.  The tags (a hash, 0 = empty) are an array of their own
 * so that a miss touches one cache line; a slot keeps the request's
 * significant prefix (the fields before the operands and the operands in
 * use; only requests whose bytes after it are all zero are kept). */
#define XE_ENC_BITS    12
#define XE_ENC_SLOTS   (1u << XE_ENC_BITS)
#define XE_ENC_KEY_MAX (offsetof(ZydisEncoderRequest, operands) + 3 * sizeof(ZydisEncoderOperand))
struct xe_enc_memo {
	uint64_t tag[XE_ENC_SLOTS];
	struct xe_enc_slot {
		uint16_t key_len;
		uint8_t len;
		uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
		uint8_t key[XE_ENC_KEY_MAX];
	} slot[XE_ENC_SLOTS];
};

/* Room for n more bytes in the current section, else e->overflow. */
static inline bool xe_room(struct xe *e, uint32_t n)
{
	if (e->len[e->cur] + n > XLAT_SEC_CAP) {
		e->overflow = true;
		return false;
	}
	return true;
}

/* Set the category of what is emitted next; returns the previous one. */
static inline int xe_cat(struct xe *e, int cat)
{
	int old = e->cat;
	e->cat = cat;
	return old;
}

/* Scratch registers chosen for one guest instruction. */
struct xlat_scratch {
	int r[4];	      /* GPR numbers */
	ZydisRegister reg[4]; /* their 64-bit Zydis names */
	int n;
	uint32_t spilled; /* those saved in vcpu spill[] by this instruction */
};

/* A guest address expression for the soft-MMU probe. */
struct xlat_addr {
	ZydisRegister base, index;
	uint8_t scale;
	int64_t disp;
	bool absolute;	 /* disp is the full 64-bit address (RIP-relative, moffs) */
	bool addr32;	 /* 32-bit address size (0x67) */
	int seg;	 /* 0, or ZYDIS_REGISTER_FS / ZYDIS_REGISTER_GS */
	struct xe_val v; /* how disp derives from the guest (templates) */
};

/* xlat_emit.c */
void xe_reset(struct xe *e, uint8_t *main_buf, uint8_t *cold_buf, gva_t start);
ZydisRegister xe_gpr64(int n);
int xe_gpr_num(ZydisRegister r); /* -1 if not a GPR */
ZydisEncoderOperand xe_r(ZydisRegister r);
ZydisEncoderOperand xe_i(int64_t v);
ZydisEncoderOperand xe_m(uint16_t size, ZydisRegister base, ZydisRegister index, uint8_t scale,
			 int64_t disp);
void xe_ins(struct xe *e, ZydisMnemonic m, bool gs, int n, const ZydisEncoderOperand *a,
	    const ZydisEncoderOperand *b, const ZydisEncoderOperand *c);
void xe_req(struct xe *e, const ZydisEncoderRequest *req);
void xe_bytes(struct xe *e, const uint8_t *p, uint32_t n);
void xe_gs_store(struct xe *e, uint32_t off, ZydisRegister r); /* mov %gs:off, r */
void xe_gs_load(struct xe *e, ZydisRegister r, uint32_t off);  /* mov r, %gs:off */
void xe_gs_store_imm32(struct xe *e, uint16_t size, uint32_t off, int64_t imm);
int xe_label_new(struct xe *e);
void xe_label_place(struct xe *e, int label);
void xe_branch(struct xe *e, ZydisMnemonic m, int label); /* rel32 jmp/jcc to label */
void xe_section(struct xe *e, int sec);
void xe_pcmark(struct xe *e);
void xe_set_goff(struct xe *e, uint32_t goff);
/* Switch to the host stack (guest rsp -> vcpu guest_rsp_save) and back. */
void xe_to_host_stack(struct xe *e);
void xe_to_guest_stack(struct xe *e);
/* Guest flags <-> vcpu spill_flags; tmp: a register free here (its guest
 * value saved or dead) that holds RSP (save) or rax (restore) meanwhile, or
 * ZYDIS_REGISTER_NONE; busy: a register whose host value must survive (a
 * probe's host address) or ZYDIS_REGISTER_NONE. */
void xe_flags_save(struct xe *e, ZydisRegister tmp);
void xe_flags_restore(struct xe *e, ZydisRegister tmp, ZydisRegister busy);
/* The same with DF (popfq): after guest popf. */
void xe_flags_restore_df(struct xe *e, ZydisRegister tmp);
void xe_spill(struct xe *e, struct xlat_scratch *s, uint32_t live);
void xe_unspill(struct xe *e, struct xlat_scratch *s);
/* Leave s->reg[0] = host address of the access at a (flags clobbered). */
void xe_probe(struct xe *e, const struct xlat_scratch *s, const struct xlat_addr *a, unsigned size,
	      bool write);
/* The same with two scratch registers A, T1 (xe_probe2_ok; which marks a
 * template bad when it says no only for the displacement). */
bool xe_probe2_ok(struct xe *e, const struct xlat_addr *a, unsigned size);
void xe_probe2(struct xe *e, ZydisRegister A, ZydisRegister T1, const struct xlat_addr *a,
	       unsigned size, bool write);
/* The same for an absolute address (xe_probe_abs_ok): one scratch register
 * A; T1 (free or saved on the slow path when t1_save) takes the resume
 * address on the slow path only. */
bool xe_probe_abs_ok(const struct xlat_addr *a, unsigned size);
void xe_probe_abs(struct xe *e, ZydisRegister A, ZydisRegister T1, bool t1_save,
		  const struct xlat_addr *a, unsigned size, bool write);
void xe_callout(struct xe *e, int co);
/* Exits: allocate, emit the chainable rel32 site, emit all stubs at the end. */
int xe_exit_new(struct xe *e, enum xlat_exit_kind k, gva_t target);
void xe_exit_branch(struct xe *e, ZydisMnemonic m, int exit_idx);
void xe_exit_jump_stub(struct xe *e, int exit_idx); /* unchainable: jmp to stub */
void xe_emit_stubs(struct xe *e);
/* Lay the sections out into out (cap bytes); resolve fixups; build the
 * pc map into pcmap.  Returns false if something does not fit. */
bool xe_finish(struct xe *e, uint8_t *out, uint32_t cap, uint32_t *code_len, uint8_t *pcmap,
	       uint32_t pcmap_cap, uint32_t *pcmap_len);

/* xlat_tmpl.c: template recording.  xe_note(): the instruction emitted
 * since host offset `before` (in the current section) holds value `val`
 * (as the encoder was given it) in its immediate (which = 0, 1) or its
 * displacement (which = XE_NOTE_DISP); `fixed` when the encoding's form does
 * not depend on the value.  xe_note_copy(): guest instruction `in` was
 * copied verbatim at `before`.  No-ops unless e->tm is set. */
#define XE_NOTE_DISP 2
void xe_note(struct xe *e, uint32_t before, int which, struct xe_val v, uint64_t val, bool fixed);
void xe_note_copy(struct xe *e, uint32_t before, const struct xlat_insn *in);
/* xe_note_exit_store(): the store at `before` writes bits shift.. of exit
 * exit_idx's target (-1: the block start) as an imm32 (fixed: the form does
 * not depend on the value); before = XE_NOTE_NO_CODE records the exit's
 * target only (no store in the code). */
#define XE_NOTE_NO_CODE UINT32_MAX
void xe_note_exit_store(struct xe *e, uint32_t before, int exit_idx, int shift, bool fixed);
/* The instruction at `before` (user IBL probe of direct exit exit_idx) has
 * a %gs displacement of uibl[VCPU_UIBL_INDEX(target)] plus a constant. */
void xe_note_uibl(struct xe *e, uint32_t before, int exit_idx);
/* The instruction at `before` holds, in its displacement (which =
 * XE_NOTE_DISP) or immediate (0), `field`: for sub = 0 a TLB entry's
 * displacement (VCPU_TLB_INDEX(val) * 32 plus a constant), for sub = n the
 * page of the last byte of an n-byte access at val (XLAT_RELOC_TLB). */
void xe_note_tlb(struct xe *e, uint32_t before, int which, struct xe_val v, uint64_t val,
		 uint64_t field, unsigned sub);
struct xe_val xe_val_pc(void);
struct xe_val xe_val_disp(const struct xlat_insn *in, bool pc);
struct xe_val xe_val_imm(const struct xlat_insn *in, int k, bool pc);

/* xlat_facts.c: the conditional flag writers (liveness "may write"); the
 * instruction fact table is public (xlat_facts.h). */
bool xlat_flags_write_conditional(const struct xlat_insn *in);
bool xlat_is_shift(ZydisMnemonic m); /* shl shr sar rol ror rcl rcr shld shrd */

/* xlat_mangle.c: what one instruction becomes. */
enum xlat_class {
	XC_COPY,      /* copied byte for byte */
	XC_MEM,	      /* one explicit memory operand through the soft-MMU */
	XC_RIPLEA,    /* lea of a RIP-relative address */
	XC_PUSH,      /* push reg/imm/mem */
	XC_POP,	      /* pop reg */
	XC_LEAVE,     /* leave */
	XC_PUSHF,     /* pushfq */
	XC_POPF,      /* popfq: ends the block */
	XC_CLI,	      /* cli: byte store */
	XC_STI,	      /* sti: byte store, block ends after the next instruction */
	XC_STAC,      /* stac/clac: byte store on vcpu.ac */
	XC_CLAC,      /* */
	XC_SWAPGS,    /* swap vcpu gs_base / kernel_gs_base */
	XC_SERIALIZE, /* serialize: nothing, then the block ends (FALL exit) */
	XC_SEGREAD,   /* mov reg, sreg: load of vcpu.sel[] */
	XC_RDTSC,     /* rdtsc (kernel): host rdtsc + vcpu.tsc_offset */
	XC_STRING,    /* movs/stos/lods/cmps/scas: call-out */
	XC_JMP,	      /* jmp rel */
	XC_JCC,	      /* jcc rel */
	XC_LOOP,      /* loop/loope/loopne/jrcxz/jecxz */
	XC_CALL,      /* call rel */
	XC_JMP_IND,   /* jmp reg/mem */
	XC_CALL_IND,  /* call reg/mem */
	XC_RET,	      /* ret / ret imm16 */
	XC_PRIV,      /* privileged/sensitive: PRIV exit, runtime emulates */
	XC_REFUSE,    /* not covered: refuse the block */
};

enum xlat_class xlat_classify(const struct xlat_insn *in);
/* The index of in's explicit memory access operand (-1: none; address
 * generation is not an access); counts of explicit and hidden ones. */
int xlat_mem_operand(const struct xlat_insn *in, int *n_explicit, int *n_hidden);
bool xlat_class_ends_block(enum xlat_class c);
enum xlat_class xlat_class_user(enum xlat_class c);
/* Emit the host code for `in` (class c), including its exits when the class
 * ends the block (xlat_class_ends_block); deferred restores are flushed or
 * carried as the class allows.  Encoder trouble sets e->failed. */
void xlat_mangle(struct xe *e, const struct xlat_insn *in, enum xlat_class c);
void xlat_mangle_fall(struct xe *e, gva_t next);
/* Restore every deferred scratch register and the flags (block end). */
void xlat_flush_pending(struct xe *e);
/* Choose n scratch registers for in (reusing pending ones), spill the new
 * live ones and save the flags when asked; all stay pending. */
void xlat_begin_scratch(struct xe *e, const struct xlat_insn *in, int n, struct xlat_scratch *s,
			bool save_flags);
/* xlat_string.c: a string instruction; whether it may run inline (then
 * xlat_mangle restores only its own pending registers first). */
void xlat_mangle_string(struct xe *e, const struct xlat_insn *in);
bool xlat_string_inline_ok(const struct xe *e, const struct xlat_insn *in);

#endif
