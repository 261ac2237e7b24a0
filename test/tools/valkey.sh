#!/usr/bin/env bash
# Builds Valkey 8.1.1 (the first server with `SET … IFEQ`) once, from Debian trixie's source
# package, into a cache folder outside the repository, and prints the path of valkey-server.
# Later calls reuse the binary. Tests find it through VALKEY_SERVER or this cache path
# (test/helpers/valkey.ts); .ci/run calls this before `npm test`, so a test that needs Valkey
# never has to skip.
#
# apt reads a private source list (a deb-src entry for trixie with the machine's own Debian
# URIs and keyring) and keeps its lists in the cache folder: the machine's apt configuration
# is left as it was.
set -euo pipefail

VERSION=8.1.1
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/idempotent-executor"
TARGET="$CACHE_ROOT/valkey-$VERSION"
BINARY="$TARGET/valkey-server"

if [[ -x "$BINARY" ]] && "$BINARY" --version | grep -q "v=$VERSION"; then
  echo "$BINARY"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/valkey-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/sources.list.d"
cat >"$WORK/apt/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
LIST
APT_OPTS=(
  -o "Dir::Etc::SourceList=$WORK/apt/sources.list"
  -o "Dir::Etc::SourceParts=$WORK/apt/sources.list.d"
  -o "Dir::State::Lists=$WORK/apt/lists"
  -o "APT::Sandbox::User=root"
)
echo "valkey: fetching the $VERSION source package from Debian trixie" >&2
apt-get "${APT_OPTS[@]}" -qq update >&2
(cd "$WORK" && apt-get "${APT_OPTS[@]}" source --download-only valkey >&2) || true
ORIG="$(ls "$WORK"/valkey_"$VERSION"*.orig.tar.* 2>/dev/null | head -n1 || true)"
if [[ -z "$ORIG" ]]; then
  echo "valkey: the orig tarball of valkey $VERSION was not fetched" >&2
  exit 1
fi

echo "valkey: building $(basename "$ORIG") (a few minutes)" >&2
mkdir -p "$WORK/src"
tar xf "$ORIG" -C "$WORK/src" --strip-components=1
make -C "$WORK/src" -j"$(nproc)" BUILD_TLS=no >"$WORK/build.log" 2>&1 || {
  tail -n 40 "$WORK/build.log" >&2
  exit 1
}

mkdir -p "$TARGET"
install -m 0755 "$WORK/src/src/valkey-server" "$BINARY.partial"
mv "$BINARY.partial" "$BINARY"
"$BINARY" --version >&2
echo "$BINARY"
