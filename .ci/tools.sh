#!/usr/bin/env bash
# Builds the real cosign and syft CLIs (the versions modgate uses as
# libraries) for interoperability tests and benchmarks, once, into the user
# cache directory, which survives between CI runs. Prints the bin directory.
#
# The Go module proxy here refuses some versions in their dependency graphs;
# the replace block pins available neighbours (see shared/reference/deps.md).
set -euo pipefail

COSIGN_VERSION=v2.6.5
SYFT_VERSION=v1.57.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/modgate-tools/cosign-$COSIGN_VERSION-syft-$SYFT_VERSION"
bin="$cache/bin"
if [ -x "$bin/cosign" ] && [ -x "$bin/syft" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module modgate.local/tools

go 1.26.8

require (
	github.com/anchore/syft $SYFT_VERSION
	github.com/sigstore/cosign/v2 $COSIGN_VERSION
)

// Versions the proxy refuses, pinned to available neighbours.
replace (
	github.com/Azure/go-ansiterm => github.com/Azure/go-ansiterm v0.0.0-20250102033503-faa5f7b0171c
	github.com/Microsoft/go-winio => github.com/Microsoft/go-winio v0.6.2
	github.com/docker/cli => github.com/docker/cli v29.0.0+incompatible
	github.com/github/go-spdx/v2 => github.com/github/go-spdx/v2 v2.7.0
	github.com/google/pprof => github.com/google/pprof v0.0.0-20250923004556-9e5a51aed1e8
	github.com/varlink/go => github.com/varlink/go v0.4.0
	github.com/vbauerster/mpb/v8 => github.com/vbauerster/mpb/v8 v8.12.0
)
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/anchore/syft/cmd/syft"
	_ "github.com/sigstore/cosign/v2/cmd/cosign"
)
GO
GOFLAGS=-mod=mod go mod tidy >&2
GOFLAGS=-mod=mod go build -trimpath -o "$bin/cosign.tmp" github.com/sigstore/cosign/v2/cmd/cosign >&2
mv "$bin/cosign.tmp" "$bin/cosign"
GOFLAGS=-mod=mod go build -trimpath -o "$bin/syft.tmp" github.com/anchore/syft/cmd/syft >&2
mv "$bin/syft.tmp" "$bin/syft"
echo "$bin"
