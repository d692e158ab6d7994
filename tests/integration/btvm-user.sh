#!/usr/bin/env bash
# Guest user code under btvm (check step check-btvm-user).
#
#   tests/integration/btvm-user.sh BUILD_DIR
#
# The test guest's whole suite (kernel tests, then the user programs running
# natively in stub processes: fork/exec/COW, demand paging, munmap, kills by
# #GP/#UD/#DE/#PF, clocks, yield, FPU isolation, preemption; the disk test
# writes and reads back) must pass under btvm and print what QEMU prints
# (guests/qemu-all.expect, masked and with the three platform-identity
# lines dropped on both sides, as tests/integration/btvm-boot.sh does):
#   cold        no database
#   warm        from a `pretrans build` database: most kernel blocks come from it;
#               direct mode with the defaults maps pages ahead (fault-around)
#   around1     direct mode with --fault-around 1 --stub-pool 0: exact too,
#               nothing mapped ahead
#   bench       test=none bench=1: every RESULT line of /bin/bench and the
#               kernel's disk_read appear
#   reloc       user code moved with mremap runs from the first place's
#               templates (relocated, re-verified by --verify-db)
#   userdb      after a --learn boot, user blocks come from the database's
#               user templates (re-verified by --verify-db)
#   stub death  a stub killed from outside stops the VM with a message
#               (status 4), it does not hang or crash btvm
# User modes (docs/user-mode.md): cold runs the default (adaptive) and must
# print exactly what QEMU prints, every program included, and use both
# modes (trials); translated runs every program translated; direct and warm
# run them directly in stubs, where the programs in
# guests/user/tests/needs-translated-user-mode.txt cannot be exact: they
# run as skip= and the comparison expects "ok N - user/NAME # SKIP" for
# them (QEMU's check always runs them).
#   hung guest  crash=userspin: a user program loops forever in page faults
#               and system calls and nothing in the guest kills it:
#               --timeout 2 ends btvm within 3 s (status 124); SIGTERM sent
#               by PID ends it at once (status 130, "stopped by signal 15"),
#               with --learn writing the database back (not status 6)
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/qemu-lib.sh"
. "$here/btvm-lib.sh"
BT_TAG="btvm-user"
BT_TIMEOUT=90

build=${1:?usage: btvm-user.sh BUILD_DIR}
btvm=$build/bin/btvm
pretrans=$build/bin/pretrans
kernel=$build/guests/kernel.elf
initrd=$build/guests/initrd.cpio
for f in "$btvm" "$pretrans" "$kernel" "$initrd"; do
	if [ ! -e "$f" ]; then
		echo "btvm-user: $f is missing: build it with make BUILD=$build" >&2
		exit 1
	fi
done

work=$(mktemp -d /tmp/btvm-user.XXXXXX)
trap 'rm -rf "$work"' EXIT
# never the user's database key (make check sets one under the build dir)
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$work/config}
# the direct-mode skip list (the one place to flip: that file)
skip_names=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' \
	"$repo/guests/user/tests/needs-translated-user-mode.txt" | tr -d ' \t' | paste -sd, -)
all_cmdline="console=ttyS0 test=all${skip_names:+ skip=$skip_names}"
full_cmdline="console=ttyS0 test=all"
# QEMU's output as btvm must print it: a program QEMU cannot run as the
# hardware does (guests/user/tests/qemu-lacks.txt, "# SKIP" in QEMU's
# output) runs under btvm and prints the hardware's answer, its NAME.expect
# file, before its ok line
btvm_expect=$work/btvm-all.expect
cp "$repo/guests/qemu-all.expect" "$btvm_expect"
for n in $(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$repo/guests/user/tests/qemu-lacks.txt"); do
	awk -v n="$n" -v frag="$repo/guests/user/tests/$n.expect" '
		$0 ~ ("^ok [0-9]+ - user/" n " # SKIP$") {
			while ((getline l < frag) > 0)
				print l
			sub(/ # SKIP$/, "")
		}
		{ print }' "$btvm_expect" >"$btvm_expect.new" && mv "$btvm_expect.new" "$btvm_expect"
done
all_expect=$work/qemu-all.expect
# QEMU's output with each skipped program's lines (since the previous TAP
# line) replaced by its SKIP line
awk -v skip=",$skip_names," '
	/^(ok|not ok) [0-9]+ - / || /^1\.\.[0-9]+$/ {
		if ($0 ~ /^ok [0-9]+ - user\/[^ ]+$/) {
			name = $0
			sub(/^ok [0-9]+ - user\//, "", name)
			if (index(skip, "," name ",")) {
				buf = ""
				print $0 " # SKIP"
				next
			}
		}
		printf "%s", buf
		buf = ""
		print
		next
	}
	{ buf = buf $0 "\n" }
	END { printf "%s", buf }' "$btvm_expect" >"$all_expect"
[ -n "$skip_names" ] && echo "btvm-user: skipped in direct mode (need the translated user mode): $skip_names"

same() { # NAME EXPECT_FILE
	platform_filter "$work/$1/console.raw" >"$work/$1/console.masked"
	platform_filter "$2" >"$work/$1/expect.masked"
	if ! diff -u --label "QEMU oracle" --label "btvm ($1, masked)" \
		"$work/$1/expect.masked" "$work/$1/console.masked"; then
		fail "$1" "the console differs from the QEMU oracle (diff above)"
	fi
	grep -q '^not ok' "$work/$1/console.raw" && fail "$1" "a guest test failed"
	grep -q '^ok .* - user/13-preempt' "$work/$1/console.raw" ||
		fail "$1" "the user tests did not all run"
}

# --- cold: the default user mode (adaptive), every program -------------------
if run cold 1 --kernel "$kernel" --initrd "$initrd" --cmdline "$full_cmdline" --stats=json; then
	same cold "$btvm_expect"
	sd=$(json "$work/cold/stderr" stays_direct)
	st=$(json "$work/cold/stderr" stays_translated)
	tr=$(json "$work/cold/stderr" trials)
	echo "btvm-user: [cold] adaptive: $st stays translated, $sd direct, $tr trials"
	[ "${sd:-0}" -gt 0 ] && [ "${st:-0}" -gt 0 ] && [ "${tr:-0}" -gt 0 ] ||
		fail cold "the adaptive mode did not run both user modes"
fi

# --- translated: every program, user code translated -------------------------
if run translated 1 --kernel "$kernel" --initrd "$initrd" --cmdline "$full_cmdline" \
	--user=translated --stats=json; then
	same translated "$btvm_expect"
	st=$(json "$work/translated/stderr" stays_translated)
	sd=$(json "$work/translated/stderr" stays_direct)
	fb=$(json "$work/translated/stderr" fallbacks)
	ub=$(json "$work/translated/stderr" blocks_translated)
	echo "btvm-user: [translated] $st stays translated ($ub user blocks), $sd direct ($fb fallbacks)"
	[ "${st:-0}" -gt 1000 ] && [ "${ub:-0}" -gt 100 ] ||
		fail translated "the user programs did not run translated"
	[ "${sd:-0}" -le "${fb:-0}" ] ||
		fail translated "direct stays other than fallbacks with --user=translated"
	# fast system calls (docs/runtime.md): most syscall/sysretq pairs never
	# reach the dispatcher
	fs=$(json "$work/translated/stderr" fast_syscalls)
	fr=$(json "$work/translated/stderr" fast_sysrets)
	echo "btvm-user: [translated] fast system calls $fs, fast returns $fr"
	[ "${fs:-0}" -gt 1000 ] && [ "${fr:-0}" -gt 1000 ] ||
		fail translated "system calls did not take the fast path"
	# each fast return starts a stay the policy must hear about (vm_stay.c
	# vm_fx_sync): without those reports only the dispatcher's ~1 in 4 would be
	[ "${st:-0}" -ge "${fr:-1}" ] ||
		fail translated "$st stays reported for $fr fast returns"
fi

# --- the same without fast system calls: the dispatcher's path stays exact ----
if run slowsys 1 --kernel "$kernel" --initrd "$initrd" --cmdline "$full_cmdline" \
	--user=translated --no-fast-syscalls --stats=json; then
	same slowsys "$btvm_expect"
	fs=$(json "$work/slowsys/stderr" fast_syscalls)
	[ "${fs:-1}" -eq 0 ] || fail slowsys "--no-fast-syscalls still took the fast path"
fi

# --- direct: user code in stubs ----------------------------------------------
run direct 1 --kernel "$kernel" --initrd "$initrd" --cmdline "$all_cmdline" --user=direct \
	--stats && same direct "$all_expect"
grep 'btvm: user:' "$work/direct/stderr" | sed 's/^/btvm-user: [direct] /'
# without fault-around and the stub pool (the defaults map ahead: [warm])
if run around1 1 --kernel "$kernel" --initrd "$initrd" --cmdline "$all_cmdline" --user=direct \
	--fault-around 1 --stub-pool 0 --stats=json; then
	same around1 "$all_expect"
	ahead=$(json "$work/around1/stderr" mapped_ahead)
	echo "btvm-user: [around1] --fault-around 1: ${ahead:-?} pages mapped ahead"
	[ "${ahead:-x}" = 0 ] || fail around1 "pages were mapped ahead with --fault-around 1"
fi

# --- warm -------------------------------------------------------------------
db=$work/kernel.tcdb
if "$pretrans" build "$kernel" -o "$db" >"$work/pretrans.log" 2>&1; then
	if run warm 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$db" \
		--cmdline "$all_cmdline" --user=direct --stats=json; then
		same warm "$all_expect"
		from_db=$(json "$work/warm/stderr" from_db)
		translated=$(json "$work/warm/stderr" translated)
		echo "btvm-user: [warm] $from_db kernel blocks from the database, $translated translated"
		[ "${from_db:-0}" -gt "${translated:-0}" ] ||
			fail warm "most kernel blocks did not come from the database"
		syscalls=$(json "$work/warm/stderr" syscalls)
		stubs=$(json "$work/warm/stderr" stubs_spawned)
		maps=$(json "$work/warm/stderr" maps)
		ahead=$(json "$work/warm/stderr" mapped_ahead)
		batches=$(json "$work/warm/stderr" batches)
		echo "btvm-user: [warm] user code ran natively: $syscalls syscalls, $maps pages mapped, $stubs stub processes"
		echo "btvm-user: [warm] fault-around: $ahead pages mapped ahead in $batches batched host calls"
		[ "${syscalls:-0}" -gt 1000 ] && [ "${stubs:-0}" -gt 10 ] && [ "${maps:-0}" -gt 100 ] ||
			fail warm "the user programs did not run in stub processes"
		[ "${ahead:-0}" -gt 0 ] && [ "${batches:-0}" -gt 0 ] ||
			fail warm "no page was mapped ahead (fault-around is on by default)"
	fi
else
	fail warm "pretrans build failed: $(tail -n 3 "$work/pretrans.log")"
fi

# --- stale: every guest-bytes hash of the database is wrong -------------------
# (signed again with this run's key, so the rows are authentic but stale):
# nothing comes from the database, every test still passes identically.
if [ -f "$db" ]; then
	cp "$db" "$work/stale.tcdb"
	if python3 "$here/tcdb-tamper.py" "$work/stale.tcdb" stale-hash >/dev/null &&
		python3 "$here/tcdb-tamper.py" "$work/stale.tcdb" resign-rows \
			"$XDG_CONFIG_HOME/btkern/db.key" >/dev/null &&
		# the predicted versions of the guest's patched sites are not rows
		# (and are right): without them every version is stale
		sqlite3 "$work/stale.tcdb" "DELETE FROM packs WHERE kind = 3"; then
		if run stale 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$work/stale.tcdb" \
			--cmdline "$all_cmdline" --stats=json; then
			same stale "$all_expect"
			from_db=$(json "$work/stale/stderr" from_db)
			stale=$(json "$work/stale/stderr" db_stale)
			echo "btvm-user: [stale] $from_db blocks from the database, $stale stale rows rejected by hash"
			[ "${from_db:-x}" = 0 ] || fail stale "a block whose guest hash is wrong was used"
			[ "${stale:-0}" -gt 100 ] || fail stale "the stale rows were not looked up"
		fi
	else
		fail stale "could not make the stale database"
	fi
fi

# --- the benchmark program runs to its end --------------------------------
if run bench 1 --kernel "$kernel" --initrd "$initrd" --cmdline "console=ttyS0 test=none bench=1"; then
	for r in getpid_roundtrip dep_loop crc32 fork_wait page_fault disk_read; do
		grep -q "^RESULT $r " "$work/bench/console.raw" || fail bench "no RESULT $r line"
	done
fi

# --- moved user code is relocated, not translated again ---------------------
# 28-reloc_code runs a three-page routine, then moves its pages twice with
# mremap (the same physical pages at other virtual addresses, as a library
# under ASLR) and runs it again: translated, each of its 7 blocks must come
# from the templates of the first place at both new places (14), and
# --verify-db re-translates every relocated block: all identical.
if run reloc 1 --kernel "$kernel" --initrd "$initrd" --user=translated --verify-db \
	--stats=json --cmdline "console=ttyS0 test=28-reloc_code"; then
	grep -q "^ok 1 - user/28-reloc_code$" "$work/reloc/console.raw" ||
		fail reloc "28-reloc_code did not pass: $(grep '^#' "$work/reloc/console.raw" | tail -n 3)"
	rel=$(json "$work/reloc/stderr" blocks_relocated)
	ver=$(json "$work/reloc/stderr" blocks_reloc_verified)
	dif=$(json "$work/reloc/stderr" blocks_reloc_differ)
	if [ "${rel:-0}" -lt 14 ] || [ "${ver:-x}" != "$rel" ] || [ "${dif:-x}" != 0 ]; then
		fail reloc "user blocks relocated ${rel:-?}, verified ${ver:-?}, differing ${dif:-?}: want at least 14, all verified, none differing"
	else
		echo "btvm-user: [reloc] $rel user blocks relocated, $ver re-translated identically"
	fi
fi

# --- user templates across boots ---------------------------------------------
# (docs/user-mode.md "Sharing user translations across boots") A --learn boot
# with every program translated stores the user templates it kept; the next
# boot of the same database takes user blocks from them (found by the bytes
# at RIP: physical addresses differ from boot to boot), --verify-db
# re-translates each: all identical, and fewer user blocks are translated.
if [ -f "$db" ]; then
	cp "$db" "$work/user.tcdb"
	ucmd="console=ttyS0 test=01-hello,02-fork_cow,03-exec,28-reloc_code"
	if run ulearn 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$work/user.tcdb" --learn \
		--user=translated --stats=json --cmdline "$ucmd"; then
		stored=$(json "$work/ulearn/stderr" templates_stored)
		utr0=$(json "$work/ulearn/stderr" blocks_translated)
		[ "${stored:-0}" -gt 0 ] || fail ulearn "the --learn boot stored no user templates"
	fi
	if run userdb 1 --kernel "$kernel" --initrd "$initrd" --tcdb "$work/user.tcdb" \
		--user=translated --verify-db --stats=json --cmdline "$ucmd"; then
		! grep -q '^not ok' "$work/userdb/console.raw" &&
			[ "$(grep -c '^ok' "$work/userdb/console.raw")" = 4 ] ||
			fail userdb "the programs did not all pass: $(grep '^not ok\|^#' "$work/userdb/console.raw" | tail -n 3)"
		udb=$(json "$work/userdb/stderr" blocks_from_db)
		uver=$(json "$work/userdb/stderr" blocks_verified)
		udif=$(json "$work/userdb/stderr" blocks_differ)
		utr=$(json "$work/userdb/stderr" blocks_translated)
		if [ "${udb:-0}" -le 0 ] || [ "${uver:-x}" != "$udb" ] || [ "${udif:-x}" != 0 ] ||
			[ "${utr:-0}" -ge "${utr0:-0}" ]; then
			fail userdb "user blocks from the database ${udb:-?}, verified ${uver:-?}, differing ${udif:-?}, translated ${utr:-?} (learn boot: ${utr0:-?}): want some, all verified, none differing, fewer translated"
		else
			echo "btvm-user: [userdb] $stored templates stored; $udb user blocks from the database, $uver re-translated identically; $utr translated (learn boot: $utr0)"
		fi
	fi
fi

# --- a stub that dies stops the VM cleanly ----------------------------------
mkdir -p "$work/death"
"$btvm" run --kernel "$kernel" --initrd "$initrd" --timeout 60 --user=direct \
	--cmdline "console=ttyS0 test=13-preempt" </dev/null >"$work/death/out" 2>"$work/death/err" &
vmpid=$!
stub=""
for _ in $(seq 1 100); do
	stub=$(pgrep -P "$vmpid" | head -n 1)
	[ -n "$stub" ] && break
	sleep 0.05
done
if [ -z "$stub" ]; then
	fail death "no stub process appeared under btvm"
	kill "$vmpid" 2>/dev/null
else
	kill -KILL "$stub"
fi
wait "$vmpid"
st=$?
if [ "$st" != 4 ]; then
	fail death "btvm exit status $st after its stub was killed, expected 4"
elif ! grep -q "stub .*killed by signal 9" "$work/death/err"; then
	fail death "no message about the dead stub: $(head -c 300 "$work/death/err")"
else
	echo "btvm-user: [death] ok: $(grep 'stub' "$work/death/err" | head -n 1)"
fi

# --- a hung guest: --timeout and SIGTERM still end btvm -------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
mkdir -p "$work/hung"
t0=$(now_ms)
timeout --kill-after=2 20 "$btvm" run --kernel "$kernel" --initrd "$initrd" --timeout 2 \
	--cmdline "console=ttyS0 crash=userspin" </dev/null >"$work/hung/out" 2>"$work/hung/err"
st=$?
ms=$(($(now_ms) - t0))
if [ "$st" != 124 ]; then
	fail hung "btvm --timeout 2 on a spinning guest: exit status $st, expected 124"
	tail -n 5 "$work/hung/err"
elif [ "$ms" -gt 3000 ]; then
	fail hung "btvm --timeout 2 on a spinning guest took $ms ms (limit 3000)"
elif ! grep -q "crash=userspin requested" "$work/hung/out"; then
	fail hung "the guest did not reach the spinning program: $(tail -c 300 "$work/hung/out")"
else
	echo "btvm-user: [hung] --timeout 2 ended the spinning guest in $ms ms"
fi

# SIGTERM to btvm PID, then up to 5 s for it to end (SIGKILL after: a
# failure the caller sees); sets ms (from the signal to the end) and st
term_and_wait() {
	local t0
	t0=$(now_ms)
	kill -TERM "$1"
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	ms=$(($(now_ms) - t0))
	kill -KILL "$1" 2>/dev/null
	wait "$1"
	st=$?
}

mkdir -p "$work/term"
ldb=$work/term/learn.tcdb
if [ -f "$db" ]; then cp "$db" "$ldb"; else "$pretrans" build "$kernel" -o "$ldb" >/dev/null 2>&1; fi
# --user=direct: SIGTERM while a stub spins (adaptive mode keeps this
# fault-and-syscall loop translated; [hung] above covers that case)
"$btvm" run --kernel "$kernel" --initrd "$initrd" --timeout 50 --tcdb "$ldb" --learn \
	--user=direct --stats=json --cmdline "console=ttyS0 crash=userspin" </dev/null \
	>"$work/term/out" 2>"$work/term/err" &
vmpid=$!
for _ in $(seq 1 200); do # until the spinning program's stub exists
	[ -n "$(pgrep -P "$vmpid")" ] && grep -q "crash=userspin" "$work/term/out" && break
	sleep 0.05
done
sleep 0.5 # it is spinning now
term_and_wait "$vmpid"
if [ "$st" != 130 ]; then
	fail term "btvm exit status $st after SIGTERM, expected 130"
	tail -n 5 "$work/term/err"
elif [ "$ms" -gt 2000 ]; then
	fail term "btvm took $ms ms to stop after SIGTERM"
elif ! grep -q "stopped by signal 15" "$work/term/err"; then
	fail term "no message about the signal: $(head -c 300 "$work/term/err")"
elif ! grep -q '"stop":"stopped by a signal"' "$work/term/err"; then
	fail term "the statistics do not say the VM was stopped by a signal"
else
	echo "btvm-user: [term] ok in $ms ms, learned $(json "$work/term/err" learned) blocks:" \
		"$(grep 'stopped by signal' "$work/term/err")"
fi

# SIGTERM while the guest is idle with nothing to wake it (every IRQ masked,
# sti; hlt) and a console that stays quiet (a pipe nobody writes, not
# /dev/null, which poll() reports readable at once): btvm sleeps in poll()
# then, and used to lose the signal there
mkdir -p "$work/idle"
mkfifo "$work/idle/in"
exec 9<>"$work/idle/in"
"$btvm" run --kernel "$kernel" --initrd "$initrd" --timeout 50 \
	--cmdline "console=ttyS0 crash=idle" <&9 >"$work/idle/out" 2>"$work/idle/err" &
vmpid=$!
exec 9>&-
for _ in $(seq 1 200); do
	grep -q "crash=idle requested" "$work/idle/out" && break
	sleep 0.05
done
sleep 0.5 # idle now
term_and_wait "$vmpid"
if [ "$st" != 130 ]; then
	fail idle "btvm exit status $st after SIGTERM to an idle guest, expected 130"
	tail -n 3 "$work/idle/err"
elif [ "$ms" -gt 2000 ]; then
	fail idle "btvm took $ms ms to stop after SIGTERM to an idle guest"
else
	echo "btvm-user: [idle] SIGTERM stopped the idle guest in $ms ms"
fi

echo "btvm-user: $failures failure(s)"
[ $failures = 0 ]
