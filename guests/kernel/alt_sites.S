/*
 * Alternatives-style patch sites of the test guest (guests/kernel/alt.c
 * applies them at boot, as Linux's apply_alternatives does; pretrans
 * predicts the result, docs/pretrans.md "Boot-time patching").  A record
 * is Linux's struct alt_instr: s32 site - ., s32 replacement - ., u16
 * feature (word * 32 + bit, bit 15 = patch when absent), u8 site length,
 * u8 replacement length.
 */
	.macro ALT feature, site, site_len, repl, repl_len
	.pushsection .altinstructions, "a"
	.long \site - .
	.long \repl - .
	.word \feature
	.byte \site_len
	.byte \repl_len
	.popsection
	.endm

#define F_SSE2	   (0 * 32 + 26)
#define F_ALWAYS   (3 * 32 + 21)
#define F_NEVER	   (0x8000 | F_ALWAYS)

	.text
/* 1 if the CPU has SSE2 (patched), else 0 */
	.globl alt_sse2
	.type alt_sse2, @function
alt_sse2:
1:	xorl %eax, %eax
	.byte 0x0f, 0x1f, 0x00		/* nop3: no single-byte NOP runs */
2:	ret
	ALT F_SSE2, 1b, 5, 11f, 5
	.size alt_sse2, . - alt_sse2

/* a call whose replacement calls another function: 2 (rel32 fixed up) */
	.globl alt_call
	.type alt_call, @function
alt_call:
1:	call alt_slow
	ret
	ALT F_ALWAYS, 1b, 5, 12f, 5
	.size alt_call, . - alt_call

	.type alt_slow, @function
alt_slow:
	movl $1, %eax
	ret
	.size alt_slow, . - alt_slow

	.type alt_fast, @function
alt_fast:
	movl $2, %eax
	ret
	.size alt_fast, . - alt_fast

/* never patched (the inverted ALWAYS): 3 */
	.globl alt_never
	.type alt_never, @function
alt_never:
1:	movl $3, %eax
	ret
	ALT F_NEVER, 1b, 5, 13f, 5
	.size alt_never, . - alt_never

/* a jmp replacement, recomputed to a 2-byte jmp: 6 */
	.globl alt_jmp
	.type alt_jmp, @function
alt_jmp:
1:	movl $5, %eax
	ret
	.byte 0x0f, 0x1f, 0x00
alt_jmp_target:
	movl $6, %eax
	ret
	ALT F_ALWAYS, 1b, 5, 14f, 5
	.size alt_jmp, . - alt_jmp

/* a shorter replacement, NOP-padded: 0 */
	.globl alt_pad
	.type alt_pad, @function
alt_pad:
1:	movl $7, %eax
	ret
	ALT F_ALWAYS, 1b, 5, 15f, 2
	.size alt_pad, . - alt_pad

	.section .altinstr_replacement, "ax"
11:	movl $1, %eax
12:	call alt_fast
13:	movl $4, %eax
14:	.byte 0xe9
	.long alt_jmp_target - (. + 4)
15:	xorl %eax, %eax
