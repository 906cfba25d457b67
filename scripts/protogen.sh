#!/usr/bin/env bash
# Regenerates the Go code of the wire schema (proto/*.proto → proto/*pb/).
# The generated code is committed, so a build needs neither protoc nor
# protoc-gen-go; CI runs this and fails if the result differs from what is
# committed (--check). Needs Debian's protoc (apt-get install
# protobuf-compiler: 3.21.12) and installs protoc-gen-go at the version pinned
# below into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
GEN_VERSION=v1.36.12

check=0
[[ "${1:-}" == "--check" ]] && check=1

command -v protoc >/dev/null || { echo "protogen: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$GEN_VERSION"

out=proto
if ((check)); then
	out=$(mktemp -d)
	trap 'rm -rf "$bin" "$out"' EXIT
fi
PATH="$bin:$PATH" protoc -I proto --go_out="$out" --go_opt=module=github.com/peerscope/peerscope/proto proto/*.proto
if ((check)); then
	if ! diff -r -x '*.proto' "$out" proto >/dev/null; then
		diff -r -x '*.proto' "$out" proto || true
		echo "protogen: the committed generated code differs from what proto/*.proto gives: run scripts/protogen.sh" >&2
		exit 1
	fi
	echo "protogen: the generated code matches proto/*.proto"
fi
