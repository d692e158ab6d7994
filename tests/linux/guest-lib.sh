# shellcheck shell=sh
# Guest side of tests/linux/lib.sh: installed as /lib/lk.sh in the
# initramfs; the caller's /init sources it (busybox sh).
#
#   lk_setup            mount /proc, /sys, /dev (devtmpfs), /tmp (tmpfs)
#   lk_mark KEY ARGS    print the marker line "@@LK KEY ARGS" on the console
#   lk_insmod NAME      load NAME and its dependencies (lk_initramfs_add_modules)
#   lk_rmmod NAME       unload NAME and then its dependencies
#   lk_end CODE         print "@@LK end CODE", then power off (the host
#                       stops the VM by its PID if it does not end by itself)
#
# Markers start a line of their own; the host parses them with lk_marks, so
# a kernel message interleaved on the same line does not hide one.

lk_setup() {
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev 2>/dev/null
	mount -t tmpfs -o size=256m tmpfs /tmp
	export PATH=/bin:/sbin:/usr/bin:/usr/sbin
}

lk_mark() {
	echo "@@LK $*"
}

lk_insmod() {
	while read -r _lk_m; do
		insmod "$_lk_m" || return 1
	done <"/lib/modules/lk/$1.order"
}

lk_rmmod() {
	# reverse order: NAME first, then what it depends on
	sed '1!G;h;$!d' "/lib/modules/lk/$1.order" | while read -r _lk_m; do
		_lk_m=${_lk_m##*/}
		rmmod "${_lk_m%.ko}" || return 1
	done
}

lk_end() {
	echo "@@LK end ${1:-0}"
	sync
	poweroff -f
	# power-off returned (no way to power off): the host stops the VM
	while :; do sleep 1; done
}
