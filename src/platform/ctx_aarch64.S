/*
 * The aarch64 (AAPCS64) back-end of context.h.
 *
 * A saved context is the stack pointer after storing, in a 176-byte frame,
 * the registers the procedure call standard says a call preserves: x19-x28,
 * the frame pointer x29, the link register x30 (where the switch returns
 * to), the low halves d8-d15 of v8-v15, and the floating-point control
 * register FPCR (rounding mode, flush-to-zero, trap enables), kept per
 * context as the x86-64 back-end keeps MXCSR and the x87 control word.
 * Everything else is caller-saved and so already spilled by the compiler
 * around the call to cci_ctx_switch. sp stays 16-byte aligned throughout.
 *
 *   frame (offsets from the saved sp)
 *     0 x19 x20   16 x21 x22   32 x23 x24   48 x25 x26   64 x27 x28
 *    80 x29 x30   96 d8  d9   112 d10 d11  128 d12 d13  144 d14 d15
 *   160 fpcr (8 bytes of padding keep the frame a multiple of 16)
 *
 *   void cci_ctx_switch(void **save, void *to)     x0 = save, x1 = to
 *
 * `hint #34` is BTI C: a landing pad where branch target identification is
 * enforced, a no-op everywhere else.
 */
	.text
	.globl	cci_ctx_switch
	.type	cci_ctx_switch, %function
	.p2align 4
cci_ctx_switch:
	.cfi_startproc
	hint	#34
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	d14, d15, [sp, #144]
	ldp	d12, d13, [sp, #128]
	ldp	d10, d11, [sp, #112]
	ldp	d8, d9, [sp, #96]
	ldp	x29, x30, [sp, #80]
	ldp	x27, x28, [sp, #64]
	ldp	x25, x26, [sp, #48]
	ldp	x23, x24, [sp, #32]
	ldp	x21, x22, [sp, #16]
	ldp	x19, x20, [sp, #0]
	add	sp, sp, #176
	ret
	.cfi_endproc
	.size	cci_ctx_switch, .-cci_ctx_switch

/*
 * First code a new context runs, reached by the switch's `ret`:
 * cci_ctx_make left entry in x19, its argument in x20, a zero frame pointer
 * and sp at the 16-byte aligned top of the stack. Entry never returns; the
 * undefined return address ends debugger backtraces here.
 */
	.globl	cci_ctx_trampoline
	.hidden	cci_ctx_trampoline
	.type	cci_ctx_trampoline, %function
	.p2align 4
cci_ctx_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	hint	#34
	mov	x0, x20
	blr	x19
	brk	#0
	.cfi_endproc
	.size	cci_ctx_trampoline, .-cci_ctx_trampoline

	.section .note.GNU-stack,"",%progbits
