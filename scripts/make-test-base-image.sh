#!/usr/bin/env bash
# Make the local image that stands in for nvidia/cuda in build-image tests (no registry is
# reachable): busybox (static) + a copy of a host CPython with its stdlib, venv and ensurepip.
# It has no CUDA at all: the tests' stand-in libraries are compiled by nvcc on the host, and the
# verify stage only reads their fatbins. Cached by tag: the tag hashes this script and the Python.
#   usage: scripts/make-test-base-image.sh [PYTHON]   (default: .venv/bin/python, else python3)
# Prints the image tag on stdout; progress goes to stderr. Needs: docker CLI, busybox-static.
source "$(dirname "$0")/_common.sh"
PY="${1:-$([[ -x "$VPY" ]] && echo "$VPY" || command -v python3)}"
read -r prefix ver full < <("$PY" -c 'import sys; print(sys.base_prefix, "%d.%d" % sys.version_info[:2], sys.version.split()[0])')
hash="$( (cat "$0"; echo "$prefix $full") | sha256sum | cut -c1-12)"
TAG="qvdoctor-test-base:py${ver}-${hash}"
if docker image inspect "$TAG" >/dev/null 2>&1; then echo "$TAG"; exit 0; fi

BUSYBOX="$(command -v busybox || true)"
[[ -n "$BUSYBOX" ]] && file -L "$BUSYBOX" | grep -q 'statically linked' \
  || die "a static busybox is needed: apt-get install busybox-static"
python_bin="$prefix/bin/python$ver"
[[ -x "$python_bin" ]] || die "no python$ver under $prefix/bin"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
log "making $TAG from $python_bin (Python $full) in $root"

mkdir -p "$root"/{bin,sbin,usr/bin,usr/local/bin,usr/local/lib,tmp,etc,root,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

# CPython: the binary under /usr/local/bin (so sys.prefix is /usr/local), the stdlib without
# tests / GUI / site-packages, and every shared library the binary and its extension modules load.
cp "$python_bin" "$root/usr/local/bin/python$ver"
ln -s "python$ver" "$root/usr/local/bin/python3"
ln -s "python$ver" "$root/usr/local/bin/python"
tar -C "$prefix/lib" -cf - \
  --exclude="python$ver/test" --exclude="python$ver/idlelib" --exclude="python$ver/tkinter" \
  --exclude="python$ver/turtledemo" --exclude="python$ver/lib2to3/tests" --exclude="python$ver/config-*" \
  --exclude="python$ver/site-packages/*" "python$ver" | tar -C "$root/usr/local/lib" -xf -
for lib in "$prefix"/lib/libpython*.so*; do [[ -e "$lib" ]] && cp -L "$lib" "$root/usr/local/lib/"; done
deps() { ldd "$@" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]+\//{print $1}' | sort -u; }
for dep in $(deps "$python_bin" "$prefix/lib/python$ver/lib-dynload/"*.so); do
  cp -L --parents "$dep" "$root/"
  # the binary may carry a RUNPATH into $prefix: keep copies on the default search path too
  cp -L "$dep" "$root/usr/local/lib/" 2>/dev/null || true
done
mkdir -p "$root/etc"
printf '/usr/local/lib\n' > "$root/etc/ld.so.conf"

tar -C "$root" -cf - . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LD_LIBRARY_PATH=/usr/local/lib' \
  --change 'CMD ["/bin/sh"]' \
  --message "qvdoctor test base: busybox + CPython $full (stands in for nvidia/cuda)" - "$TAG" >/dev/null
docker run --rm --network none "$TAG" python3 -c 'import ssl, venv, ensurepip, sqlite3, zlib' \
  || { docker rmi "$TAG" >/dev/null; die "the image's Python does not import its stdlib"; }
log "made $TAG ($(docker image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$TAG"
