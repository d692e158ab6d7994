# bash completion for pretrans, btvm and ptdiff (installed by `make install`
# into share/bash-completion/completions/, one link per program).

_btkern_pretrans()
{
	local cur prev cmd
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=${COMP_WORDS[1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "build stats show verify xcheck kpatch diff --help --version" -- "$cur"))
		return
	fi
	case $prev in
	-o | --output | --reuse | --modules | --image | --html | --check) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-M) COMPREPLY=($(compgen -W "intel att" -- "$cur")); return ;;
	-j | --jobs | --sample) return ;;
	esac
	local opts
	case $cmd in
	build) opts="-o --output -j --jobs --no-crosscheck --reuse --modules --help" ;;
	stats) opts="--json --help" ;;
	show) opts="-g --guest -M --image --help" ;;
	verify) opts="--sample --sign --help" ;;
	xcheck) opts="--help" ;;
	kpatch) opts="--check -v --help" ;;
	diff) opts="--json --json= --html --text --all --no-listings --no-xlat -M --color --color=auto
		--color=always --color=never --no-pager -j --jobs --help" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}

_btkern_btvm()
{
	local cur prev
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "run --sandbox-selftest --help --version" -- "$cur"))
		return
	fi
	case $prev in
	--kernel | --tcdb | --initrd | --disk | --virtio-disk | --stats-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--user) COMPREPLY=($(compgen -W "adaptive direct translated" -- "$cur")); return ;;
	--mem | --cmdline | --timeout | --log | --fault-around | --stub-pool) return ;;
	esac
	COMPREPLY=($(compgen -W "--kernel --tcdb --learn --verify-db --initrd --disk --virtio-disk --mem --cmdline
		--user --timeout --stats --stats=json --stats-file --log --perf-map --no-fast-syscalls --no-fast-paths --count-probes --fault-around --stub-pool --no-sandbox --help" -- "$cur"))
}

_btkern_ptdiff()
{
	local cur prev
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	case $prev in
	--html) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-M) COMPREPLY=($(compgen -W "intel att" -- "$cur")); return ;;
	-j | --jobs) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "--json --json= --html --text --all --no-listings --no-xlat -M --color
			--color=auto --color=always --color=never --no-pager -j --jobs --help --version" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}

complete -F _btkern_pretrans pretrans
complete -F _btkern_btvm btvm
complete -F _btkern_ptdiff ptdiff
