#!/usr/bin/env bash
# Builds the browser light node (web/peer): the tree's wire code generated
# from proto/chunk.proto and proto/mesh.proto by protoc-gen-es (into
# web/peer/src/gen), then web/peer/src bundled by esbuild into
# web/peer/dist/peer.js, which the Go package web/peer embeds. Both are
# committed, so `go build` needs no npm; CI runs this with --check, which
# fails when the committed files are not what the sources give (protoc-gen-es
# and esbuild are pinned in web/peer/package.json, and esbuild's output is
# the same for the same version and inputs).
#
# Needs node, npm and Debian's protoc (apt-get install protobuf-compiler);
# runs `npm ci` in web/peer when its node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=web/peer

check=0
[[ "${1:-}" == "--check" ]] && check=1

command -v protoc >/dev/null || { echo "bundle: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
command -v npm >/dev/null || { echo "bundle: npm not found (apt-get install npm)" >&2; exit 1; }
if [[ ! -x "$dir/node_modules/.bin/esbuild" || ! -x "$dir/node_modules/.bin/protoc-gen-es" ]]; then
	# --ignore-scripts: nothing here needs an install script (@libp2p/webrtc's
	# native module is for node, not the browser bundle), and some would
	# download binaries.
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

out=$dir
if ((check)); then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
	mkdir -p "$out/src"
	cp -r "$dir/src/." "$out/src/"
	rm -rf "$out/src/gen"
	ln -s "$PWD/$dir/node_modules" "$out/node_modules"
fi
mkdir -p "$out/src/gen" "$out/dist"
protoc -I proto --plugin=protoc-gen-es="$dir/node_modules/.bin/protoc-gen-es" \
	--es_out="$out/src/gen" --es_opt=target=js,import_extension=js proto/chunk.proto proto/mesh.proto
"$dir/node_modules/.bin/esbuild" "$out/src/peer.js" --bundle --format=iife --global-name=PeerscopePeer \
	--platform=browser --target=chrome110,firefox115,safari16 --minify --legal-comments=none \
	--log-level=warning --outfile="$out/dist/peer.js"

if ((check)); then
	status=0
	for f in src/gen/chunk_pb.js src/gen/mesh_pb.js dist/peer.js; do
		if ! cmp -s "$out/$f" "$dir/$f"; then
			echo "bundle: $dir/$f is not what the sources give: run scripts/bundle.sh" >&2
			status=1
		fi
	done
	((status == 0)) && echo "bundle: web/peer's generated code and bundle match their sources ($(gzip -9c "$dir/dist/peer.js" | wc -c) bytes gzipped)"
	exit $status
fi
echo "bundle: $dir/dist/peer.js, $(wc -c <"$dir/dist/peer.js") bytes, $(gzip -9c "$dir/dist/peer.js" | wc -c) gzipped"
