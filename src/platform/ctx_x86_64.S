/*
 * The x86-64 (System V) back-end of context.h.
 *
 * A saved context is the stack pointer after pushing the callee-saved
 * registers the ABI says a call preserves: rbp, rbx, r12-r15, and the
 * control words of MXCSR and the x87 FPU (rounding mode, exception masks).
 * Everything else is caller-saved and so already spilled by the compiler
 * around the call to cci_ctx_switch.
 *
 *   void cci_ctx_switch(void **save, void *to)     rdi = save, rsi = to
 */
	.text
	.globl	cci_ctx_switch
	.type	cci_ctx_switch, @function
	.p2align 4
cci_ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	cci_ctx_switch, .-cci_ctx_switch

/*
 * First code a new context runs: cci_ctx_make left entry in rbx and its
 * argument in r12, and the stack 16-byte aligned, as a call needs. Entry
 * never returns; the undefined return address ends debugger backtraces here.
 */
	.globl	cci_ctx_trampoline
	.hidden	cci_ctx_trampoline
	.type	cci_ctx_trampoline, @function
	.p2align 4
cci_ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%rbx
	ud2
	.cfi_endproc
	.size	cci_ctx_trampoline, .-cci_ctx_trampoline

	.section .note.GNU-stack,"",@progbits
