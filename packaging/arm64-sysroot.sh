#!/bin/sh
# arm64-sysroot.sh DIR MIRROR: the arm64 libraries faced links, for the
# cross build (`make build-arm64`) and for running it under qemu-user.
#
# Why a sysroot and not multiarch (apt-get install libopencv-*:arm64):
# Debian's OpenCV image codecs need libgdal32, which is not Multi-Arch:
# same, so installing the arm64 OpenCV libraries removes the amd64
# libopencv-dev the native build needs. mmdebstrap's extract variant
# unpacks the packages and their dependencies into DIR instead, without
# running maintainer scripts (so without qemu) and without touching the
# host's dpkg. Headers come from the host's libopencv-*-dev: those
# packages are Multi-Arch: same, their headers identical on every arch.
set -eu

dir=$1
mirror=$2
tmp=$dir.tmp

# The OpenCV modules gocv compiles against, and what the cross linker
# needs beside the cross toolchain's own libc.
modules="core imgproc imgcodecs videoio highgui objdetect features2d video dnn calib3d photo flann"
include=libc6,libstdc++6,libgcc-s1
for m in $modules; do include="$include,libopencv-$m""406"; done

rm -rf "$tmp"
mmdebstrap --quiet --variant=extract --architectures=arm64 --include="$include" \
	bookworm "$tmp" \
	"deb $mirror bookworm main" \
	"deb $mirror bookworm-updates main" \
	"deb $mirror-security bookworm-security main"

lib=$tmp/usr/lib/aarch64-linux-gnu
# update-alternatives did not run: give BLAS and LAPACK (libopencv_core
# links them) their usual names, for the linker and the loader.
for alt in blas lapack; do
	for so in "$lib/$alt"/lib*.so.3; do
		ln -sf "$alt/$(basename "$so")" "$lib/$(basename "$so")"
	done
done

# pkg-config file for gocv (`#cgo pkg-config: opencv4`): the sysroot's
# libraries by full soname (the sysroot has no -dev symlinks), the host's
# headers.
libs=""
for so in "$lib"/libopencv_*.so.406; do libs="$libs -l:$(basename "$so")"; done
mkdir -p "$tmp/pkgconfig"
cat >"$tmp/pkgconfig/opencv4.pc" <<PC
Name: OpenCV
Description: OpenCV 4.6 of the arm64 sysroot $dir
Version: 4.6.0
Libs: -L$dir/usr/lib/aarch64-linux-gnu$libs
Cflags: -I/usr/include/opencv4
PC

# qemu-user looks up every absolute path in its -L prefix first, and
# qemu 7.2 passes the host's x86 /proc/cpuinfo through for aarch64. ONNX
# Runtime's cpuinfo library parses it at load and crashes on x86 content,
# so the sysroot carries what a 2-core Cortex-A72 (Raspberry Pi 4) shows.
mkdir -p "$tmp/proc"
for n in 0 1; do
	printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$n"
done >"$tmp/proc/cpuinfo"

rm -rf "$dir"
mv "$tmp" "$dir"
