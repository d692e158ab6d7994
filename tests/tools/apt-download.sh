# Sourced by the tests/tools/fetch-*.sh scripts: download one Debian package
# into a scratch directory of the cache, the part every fetcher shares.
#
#   apt_download TAG PKG CACHE "SIZE" [ALTERNATIVES_REGEX]
#
# runs apt-get update (with sudo when not root), checks that PKG has a
# candidate (else lists the packages matching ALTERNATIVES_REGEX, or says to
# check sources.list, and exits 1), downloads it into a fresh directory
# under CACHE that is removed on exit, and sets
#   APT_WORK  that directory
#   APT_DEB   the .deb in it
#   APT_CAND  the version downloaded
# Messages go to stderr, prefixed with TAG.
apt_download() {
	local tag=$1 pkg=$2 cache=$3 size=$4 alts=${5:-}
	local sudo=
	[ "$(id -u)" != 0 ] && sudo=sudo
	echo "$tag: apt-get update" >&2
	$sudo apt-get update -qq >&2
	APT_CAND=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [ -z "$APT_CAND" ] || [ "$APT_CAND" = "(none)" ]; then
		if [ -n "$alts" ]; then
			echo "$tag: package $pkg is not available; available instead:" >&2
			apt-cache search --names-only "$alts" 2>/dev/null | awk '{print "  " $1}' >&2
		else
			echo "$tag: package $pkg is not available (apt-get update, check sources.list)" >&2
		fi
		exit 1
	fi
	APT_WORK=$(mktemp -d "$cache/fetch.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the directory of this call
	trap "rm -rf '$APT_WORK'" EXIT
	echo "$tag: downloading $pkg $APT_CAND ($size)" >&2
	(cd "$APT_WORK" && apt-get download -q "$pkg" >&2)
	APT_DEB=$(ls "$APT_WORK"/*.deb)
}
