/*
 * int regs_call_check(uint64_t seed, uint64_t fpcr, void (*fn)(void *),
 *                     void *arg)
 *
 * For coro_cross_check.c: fills every register AAPCS64 says a call
 * preserves — x19-x28 with seed + 1..10, d8-d15 with seed + 11..18, FPCR
 * with fpcr — calls fn(arg), and returns how many of them came back
 * changed. fn switches coroutines, so a context switch that loses a
 * register shows here; C code cannot see its own callee-saved registers.
 * The caller's registers and FPCR are restored before returning.
 *
 * frame: 0 x29 x30 | 16-95 x19-x28 | 96-159 d8-d15 | 160 seed |
 *        168 the caller's fpcr | 176 fpcr wanted | 184 padding
 */
	.text
	.globl	regs_call_check
	.type	regs_call_check, %function
	.p2align 4
regs_call_check:
	hint	#34
	stp	x29, x30, [sp, #-192]!
	mov	x29, sp
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	stp	x0, x9, [sp, #160]
	str	x1, [sp, #176]
	msr	fpcr, x1

	add	x19, x0, #1
	add	x20, x0, #2
	add	x21, x0, #3
	add	x22, x0, #4
	add	x23, x0, #5
	add	x24, x0, #6
	add	x25, x0, #7
	add	x26, x0, #8
	add	x27, x0, #9
	add	x28, x0, #10
	add	x9, x0, #11
	fmov	d8, x9
	add	x9, x0, #12
	fmov	d9, x9
	add	x9, x0, #13
	fmov	d10, x9
	add	x9, x0, #14
	fmov	d11, x9
	add	x9, x0, #15
	fmov	d12, x9
	add	x9, x0, #16
	fmov	d13, x9
	add	x9, x0, #17
	fmov	d14, x9
	add	x9, x0, #18
	fmov	d15, x9

	mov	x0, x3
	blr	x2

	ldr	x10, [sp, #160]
	mov	w0, #0
	.macro	check_x reg, n
	add	x9, x10, #\n
	cmp	\reg, x9
	cinc	w0, w0, ne
	.endm
	.macro	check_d reg, n
	add	x9, x10, #\n
	fmov	x11, \reg
	cmp	x11, x9
	cinc	w0, w0, ne
	.endm
	check_x	x19, 1
	check_x	x20, 2
	check_x	x21, 3
	check_x	x22, 4
	check_x	x23, 5
	check_x	x24, 6
	check_x	x25, 7
	check_x	x26, 8
	check_x	x27, 9
	check_x	x28, 10
	check_d	d8, 11
	check_d	d9, 12
	check_d	d10, 13
	check_d	d11, 14
	check_d	d12, 15
	check_d	d13, 16
	check_d	d14, 17
	check_d	d15, 18
	mrs	x9, fpcr
	ldr	x11, [sp, #176]
	cmp	x9, x11
	cinc	w0, w0, ne

	ldr	x9, [sp, #168]
	msr	fpcr, x9
	ldp	d14, d15, [sp, #144]
	ldp	d12, d13, [sp, #128]
	ldp	d10, d11, [sp, #112]
	ldp	d8, d9, [sp, #96]
	ldp	x27, x28, [sp, #80]
	ldp	x25, x26, [sp, #64]
	ldp	x23, x24, [sp, #48]
	ldp	x21, x22, [sp, #32]
	ldp	x19, x20, [sp, #16]
	ldp	x29, x30, [sp], #192
	ret
	.size	regs_call_check, .-regs_call_check

	.section .note.GNU-stack,"",%progbits
