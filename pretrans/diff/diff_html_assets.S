/* The HTML report's style sheet and script (diff_html.c), kept as plain
 * files next to it and embedded here, each NUL-terminated. */
	.section .rodata.diff_report, "a"
	.globl	diff_report_css, diff_report_js
diff_report_css:
	.incbin	"pretrans/diff/diff_report.css"
	.byte	0
diff_report_js:
	.incbin	"pretrans/diff/diff_report.js"
	.byte	0
	.section .note.GNU-stack, "", @progbits
