#!/bin/sh
# Build the kit's image with podman: `make image` (TARGET serve) and `make image-ray` (ray).
#
# Usage: deploy/podman/image.sh TARGET TAG
#
# The base is $BASE if set, else the official python:3.11-slim-bookworm if it can be pulled, else
# a Debian bookworm base made here with mmdebstrap (Debian's python3 is 3.11), kept as
# localhost/pdserving-base:bookworm for the next build. Where the host's pip trusts an extra CA
# ($PIP_CERT or pip's `cert` setting, as behind a TLS-inspecting proxy), the build's pip gets it
# as a build secret, which does not stay in the image.
set -eu
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}"
target=$1
tag=$2
official=docker.io/library/python:3.11-slim-bookworm
made_here=localhost/pdserving-base:bookworm

base=${BASE:-}
if [ -z "$base" ]; then
    if podman image exists "$official" || podman pull -q "$official" >/dev/null 2>&1; then
        base=$official
    else
        echo "image: $official cannot be pulled; building on $made_here" >&2
        if ! podman image exists "$made_here"; then
            rootfs=$(mktemp -d)
            mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
                bookworm "$rootfs/rootfs.tar"
            podman import -q "$rootfs/rootfs.tar" "$made_here" >/dev/null
            rm -rf "$rootfs"
        fi
        base=$made_here
    fi
fi

ca=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
set --
if [ -n "$ca" ] && [ -f "$ca" ]; then
    set -- --secret "id=pipca,src=$ca"
fi
# docker format: OCI image configs have no HEALTHCHECK.
exec podman build --format docker --build-arg "BASE=$base" "$@" --target "$target" -t "$tag" .
