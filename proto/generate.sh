#!/usr/bin/env bash
# Regenerates the Go code of every .proto under proto/ into OUT (default: proto/ itself).
# Uses protoc from PATH and the protoc-gen-go / protoc-gen-go-grpc versions pinned as tool
# dependencies in go.mod. `.ci/run` calls it with a temporary OUT and diffs the result.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$here/.." && go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go \
  && go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc)
cd "$here"
mkdir -p "$out"
PATH="$bin:$PATH" protoc -I . \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  $(find . -name '*.proto' | sort)
