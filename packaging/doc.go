// Package packaging builds faced's Debian packages with nfpm (cmd/mkdeb,
// `make deb`) and tests them: the systemd units pass `systemd-analyze
// verify`, the package installs, runs and purges in a fresh bookworm root,
// the arm64 binary runs under qemu-user, and the runtimes work under the
// kernel's write-xor-execute policy that MemoryDenyWriteExecute= asks for.
//
// Layout of an installed package (models.FindDir finds /usr/lib/faced from
// the binary's own path, so nothing needs configuring):
//
//	/usr/bin/faced
//	/usr/lib/faced/lib/<arch>/   ONNX Runtime, TensorFlow Lite (dlopen'd)
//	/usr/lib/faced/models/       the catalogue's networks
//	/lib/systemd/system/         faced.service, faced.socket
//	/etc/faced/faced.yaml        conffile
//	/var/lib/faced               the store; made by postinst, kept until purge
package packaging
