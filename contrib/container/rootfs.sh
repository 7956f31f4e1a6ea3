#!/usr/bin/env bash
# Assembles the root filesystem of the understory-sync image, as one tar archive that
# contrib/container/Containerfile adds to an empty image (FROM scratch). It runs on a Debian
# build host and takes everything from it, so the image needs no base image and no registry:
#
#   cargo build --release --locked
#   contrib/container/rootfs.sh target/container        # writes target/container/rootfs.tar
#   docker build -f contrib/container/Containerfile -t understory-sync target/container
#
# What goes in, and why:
#   /usr/bin/understory-sync          the binary (UNDERSTORY_SYNC_BINARY, default the release build)
#   the libraries `ldd` names         it links glibc dynamically (libc, libm, libgcc_s for unwinding)
#   and the dynamic loader            at the path written in the binary (/lib64/ld-linux-x86-64.so.2)
#   /etc/ssl/certs/ca-certificates.crt
#                                     reqwest's rustls verifier reads the system roots from this
#                                     file (rustls-native-certs); without one, no client is built
#   /etc/passwd, /etc/group           root, and the user the job runs as: understory-sync, 65532
#   /etc/nsswitch.conf                names: /etc/hosts (the runtime's, with Kubernetes' hostAliases)
#                                     before DNS; without the file glibc would ask DNS first
#   /var/lib/understory-sync          the state volume's mount point, owned by 65532 (a new
#                                     Docker volume takes its owner from it)
#   /etc/understory-sync              the config's mount point
#   /tmp                              a mount point (mode 1777): SQLite sorts a first load's index
#                                     builds in temporary files, and the database check reads a
#                                     copy there; with a read-only root it must be a writable mount
#
# No shell, no package manager: the image holds the job and what it loads, nothing else.
set -euo pipefail
# Directories and files readable by the job's user whatever the caller's umask.
umask 022

out=${1:-target/container}
binary=${UNDERSTORY_SYNC_BINARY:-target/release/understory-sync}
# The uid and gid of the job's user: 65532 is the usual "nonroot" id of minimal images, outside
# the ranges Debian gives system and login users.
id=65532

die() {
    echo "rootfs.sh: $*" >&2
    exit 1
}

[ -x "$binary" ] || die "$binary is not an executable; run cargo build --release --locked, or set UNDERSTORY_SYNC_BINARY"
command -v ldd >/dev/null || die "ldd is missing (Debian: apt-get install libc-bin)"
certs=/etc/ssl/certs/ca-certificates.crt
[ -s "$certs" ] || die "$certs is missing (Debian: apt-get install ca-certificates)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/usr/bin" "$stage/etc/ssl/certs" "$stage/etc/understory-sync" \
    "$stage/var/lib/understory-sync" "$stage/tmp"
chmod 0755 "$stage" "$stage/etc/understory-sync"
chmod 0750 "$stage/var/lib/understory-sync"
chmod 1777 "$stage/tmp"
install -m 0755 "$binary" "$stage/usr/bin/understory-sync"

# The shared libraries and the loader, each at the path ldd resolved it to (the loader finds
# them there without an ld.so.cache: Debian's multiarch directories are its built-in ones). A
# library ldd cannot find would make an image that fails at its first start: stop here instead.
if libs=$(ldd "$binary" 2>&1); then
    if grep -q 'not found' <<<"$libs"; then
        die "$binary needs libraries this host lacks: $(grep 'not found' <<<"$libs" | tr -s ' \t' ' ')"
    fi
    while read -r path; do
        [ -f "$path" ] || die "ldd named $path, which is not a file"
        mkdir -p "$stage$(dirname "$path")"
        # -L: the file itself, not the distribution's symlink to it.
        cp -L "$path" "$stage$path"
        chmod 0755 "$stage$path"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libs" | sort -u)
elif ! grep -q 'not a dynamic executable' <<<"$libs"; then
    die "ldd $binary failed: $libs"
fi
# (A static binary, say one built for musl, needs no library: ldd calls it not dynamic.)

install -m 0644 "$certs" "$stage/etc/ssl/certs/ca-certificates.crt"

cat >"$stage/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
understory-sync:x:$id:$id:understory-sync:/var/lib/understory-sync:/sbin/nologin
EOF
cat >"$stage/etc/group" <<EOF
root:x:0:
understory-sync:x:$id:
EOF
cat >"$stage/etc/nsswitch.conf" <<EOF
passwd: files
group: files
hosts: files dns
EOF
chmod 0644 "$stage/etc/passwd" "$stage/etc/group" "$stage/etc/nsswitch.conf"

# One layer, the same bytes for the same inputs: names sorted, times fixed, every file root's
# but the state directory, which is the job's. The script needs no root for that.
mkdir -p "$out"
mtime=${SOURCE_DATE_EPOCH:-0}
common=(--sort=name --mtime="@$mtime" --numeric-owner --format=gnu -C "$stage")
tar -cf "$out/rootfs.tar" "${common[@]}" --owner=0 --group=0 --exclude=./var/lib/understory-sync .
tar -rf "$out/rootfs.tar" "${common[@]}" --owner="$id" --group="$id" ./var/lib/understory-sync
echo "rootfs.sh: $out/rootfs.tar ($(du -h "$out/rootfs.tar" | cut -f1)) from $binary"
